{
  "targets": [
    {
      "target_name": "cairn_sys",
      "sources": ["sys.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
