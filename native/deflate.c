/*
 * cairn_deflate: gzip members made by libdeflate, on libuv's thread pool.
 *
 * One function, gzip(input, level) -> Promise<Buffer>: the whole of `input` becomes one gzip member
 * (RFC 1952: no name, mtime 0), compressed on a pool thread while the event loop goes on. Cairn's
 * parallel gzip (src/layer/pgzip.ts) cuts a layer into blocks and keeps a few of them in flight, so
 * that every core compresses; libdeflate compresses a whole buffer at once, which is what a block is,
 * and does so in about half zlib's time at the same ratio.
 *
 * Level AUTO_LEVEL (-1) picks per block the fastest level that keeps the output within 1% of what
 * zlib's level 6 makes (the default of Docker and of every gzip): libdeflate's 4 for binaries, its 5
 * for text mixed with binary, its 7 for text (auto_level below). Measured per block on a Debian
 * root, a TypeScript package, /usr/lib and /usr/share (bench/README.md, "gzip"). The choice depends
 * on the block's bytes alone, so the output stays deterministic.
 *
 * Plain Node-API C (no C++ wrapper): the binary's ABI is Node-API's, so the same build loads in every
 * Node.js from 18 on. Each pool thread keeps one compressor per level (libdeflate compressors are not
 * thread-safe, and allocating one per block would cost more than the block).
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <libdeflate.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LEVEL 12
#define AUTO_LEVEL (-1)

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref input_ref;
  const uint8_t *in;
  size_t in_len;
  int level;
  uint8_t *out;
  size_t out_len;
  const char *error;
} job_t;

static __thread struct libdeflate_compressor *thread_compressors[MAX_LEVEL + 1];

static struct libdeflate_compressor *compressor_for(int level) {
  if (thread_compressors[level] == NULL) thread_compressors[level] = libdeflate_alloc_compressor(level);
  return thread_compressors[level];
}

/*
 * The level for a block, by the share of its bytes that are printable ASCII, tab, CR or LF:
 * text (90% or more) 7, mixed (60% or more: text with some binary) 5, else (binaries, compressed or
 * packed data) 4. Per kind, the fastest level whose output is no larger than zlib's 6 makes, or
 * larger by under 1%, on a Debian root, a TypeScript package, /usr/lib and /usr/share (1 MiB blocks):
 * text at 6 was up to 1% larger (1.4% on JavaScript alone), mixed at 4 up to 3.5%, binaries at 4
 * from 0.6% smaller to 0.3% larger (bench/README.md, "gzip").
 */
static int auto_level(const uint8_t *p, size_t n) {
  size_t text = 0;
  for (size_t i = 0; i < n; i++) {
    uint8_t c = p[i];
    text += (c >= 32 && c < 127) | (c == '\n') | (c == '\r') | (c == '\t');
  }
  if (text * 10 >= n * 9) return 7;
  if (text * 10 >= n * 6) return 5;
  return 4;
}

/* On a pool thread: no JavaScript, no Node-API calls. */
static void execute(napi_env env, void *data) {
  (void)env;
  job_t *j = data;
  int level = j->level == AUTO_LEVEL ? auto_level(j->in, j->in_len) : j->level;
  struct libdeflate_compressor *c = compressor_for(level);
  if (c == NULL) {
    j->error = "out of memory (libdeflate compressor)";
    return;
  }
  size_t bound = libdeflate_gzip_compress_bound(c, j->in_len);
  j->out = malloc(bound);
  if (j->out == NULL) {
    j->error = "out of memory (gzip output)";
    return;
  }
  j->out_len = libdeflate_gzip_compress(c, j->in, j->in_len, j->out, bound);
  if (j->out_len == 0) j->error = "libdeflate_gzip_compress failed";
}

/* Back on the main thread: the result becomes a Buffer that V8 owns and counts. */
static void complete(napi_env env, napi_status status, void *data) {
  job_t *j = data;
  napi_value result;
  if (status != napi_ok && j->error == NULL) j->error = "gzip job cancelled";
  if (j->error == NULL) {
    void *copy;
    if (napi_create_buffer_copy(env, j->out_len, j->out, &copy, &result) != napi_ok) j->error = "out of memory (Buffer)";
  }
  if (j->error != NULL) {
    napi_value msg;
    napi_create_string_utf8(env, j->error, NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &result);
    napi_reject_deferred(env, j->deferred, result);
  } else {
    napi_resolve_deferred(env, j->deferred, result);
  }
  free(j->out);
  napi_delete_reference(env, j->input_ref);
  napi_delete_async_work(env, j->work);
  free(j);
}

static napi_value throw_type_error(napi_env env, const char *msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

static napi_value gzip(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) return throw_type_error(env, "gzip(input, level)");
  bool is_buffer = false;
  napi_is_buffer(env, argv[0], &is_buffer);
  if (!is_buffer) return throw_type_error(env, "gzip: input must be a Buffer");
  int32_t level;
  if (napi_get_value_int32(env, argv[1], &level) != napi_ok || level < AUTO_LEVEL || level > MAX_LEVEL) return throw_type_error(env, "gzip: level must be -1 (auto) or 0..12");
  job_t *j = calloc(1, sizeof *j);
  if (j == NULL) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  void *in;
  napi_get_buffer_info(env, argv[0], &in, &j->in_len);
  j->in = in;
  j->level = level;
  /* the input stays alive (and unmoved: Buffers are never moved) until the job completes */
  napi_create_reference(env, argv[0], 1, &j->input_ref);
  napi_value promise, name;
  napi_create_promise(env, &j->deferred, &promise);
  napi_create_string_utf8(env, "cairn:gzip", NAPI_AUTO_LENGTH, &name);
  if (napi_create_async_work(env, NULL, name, execute, complete, j, &j->work) != napi_ok || napi_queue_async_work(env, j->work) != napi_ok) {
    napi_delete_reference(env, j->input_ref);
    free(j);
    napi_throw_error(env, NULL, "could not queue the gzip job");
    return NULL;
  }
  return promise;
}

NAPI_MODULE_INIT() {
  napi_value fn, version;
  napi_create_function(env, "gzip", NAPI_AUTO_LENGTH, gzip, NULL, &fn);
  napi_set_named_property(env, exports, "gzip", fn);
  napi_create_string_utf8(env, LIBDEFLATE_VERSION_STRING, NAPI_AUTO_LENGTH, &version);
  napi_set_named_property(env, exports, "libdeflateVersion", version);
  return exports;
}
