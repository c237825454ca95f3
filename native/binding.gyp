{
  "targets": [
    {
      "target_name": "cairn_deflate",
      "sources": ["deflate.c"],
      "libraries": ["-ldeflate", "-lm"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
