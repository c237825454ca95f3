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
#include <math.h>
#include <stdbool.h>
#include <pthread.h>

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
 * Incompressible blocks (data compressed already, like .xz or .gz files, or random) are
 * stored as they are (deflate's "stored" blocks, libdeflate's level 0): any level spends as much
 * time on them as on a binary that halves (about 9 ms per MiB here), for a fraction of a percent of
 * their size; klauspost's compress, which skopeo and podman use, skips over such data too. A block
 * is taken for incompressible when both of these hold, tested in this order:
 *  - fewer than one position in 175 starts 4 bytes seen within the 32 KiB before it (deflate's
 *    window; a hash table of the last position of each 4-byte hash, checked), counted on four
 *    64 KiB samples of the block. What deflate gains on high-entropy data is a steady function of
 *    this count: on the blocks of a Debian root and of a tree of .gz, .png, .jar, .xz and .deb
 *    files that pass the second test, zlib -6 gained at most 0.49% where the whole block's count
 *    was under that, 1 to 4.2% above it (JPEG, PNG and .deb data: compressed as before), and at
 *    most 0.62% on the blocks the samples' count lets through. Ordinary binaries fail
 *    this within their first few KiB;
 *  - its 4 KiB pieces, each coded with its own byte frequencies (order-0 entropy), would save under
 *    1% of the block (runs of zeros or a narrow alphabet between the samples).
 * Together they cost 1.5% of the deflate's time on the tree of compressed files (where 12 of 286
 * blocks are stored) and save 5 to 8% of it on the Debian root (13 of 201), whose layer is 0.03%
 * larger for it, still 0.6% smaller than zlib -6 makes it.
 */
#define PIECE 4096
#define STORE_MAX_GAIN 0.01
#define WINDOW 32768
#define MATCH_HASH_BITS 16
#define MAX_MATCHES_PER 175

/* c * log2(c) for the byte counts of a piece */
static float count_log2[PIECE + 1];

static void init_tables(void) {
  count_log2[0] = 0;
  for (int c = 1; c <= PIECE; c++) count_log2[c] = (float)(c * log2((double)c));
}

/* Whether coding each piece with its own byte frequencies would save under STORE_MAX_GAIN of n. */
static bool order0_gain_small(const uint8_t *p, size_t n) {
  double max_saved_bits = STORE_MAX_GAIN * 8.0 * (double)n, saved_bits = 0;
  uint32_t h[256];
  for (size_t off = 0; off < n; off += PIECE) {
    size_t len = n - off < PIECE ? n - off : PIECE;
    memset(h, 0, sizeof h);
    for (size_t i = 0; i < len; i++) h[p[off + i]]++;
    double bits = (double)count_log2[len];
    for (int c = 0; c < 256; c++) bits -= count_log2[h[c]];
    saved_bits += 8.0 * (double)len - bits;
    if (saved_bits >= max_saved_bits) return false;
  }
  return true;
}

static __thread uint32_t *last_seen;

/* Whether at least one position in MAX_MATCHES_PER of a range starts 4 bytes seen within WINDOW bytes before. */
static bool short_matches_many_in(const uint8_t *p, size_t n, uint32_t *last) {
  memset(last, 0xff, sizeof(uint32_t) << MATCH_HASH_BITS);
  size_t limit = n / MAX_MATCHES_PER, found = 0;
  for (size_t i = 0; i + 4 <= n; i++) {
    uint32_t v;
    memcpy(&v, p + i, 4);
    uint32_t slot = (v * 2654435761u) >> (32 - MATCH_HASH_BITS), prev = last[slot];
    if (prev != UINT32_MAX && i - prev <= WINDOW && memcmp(p + prev, &v, 4) == 0 && ++found >= limit) return true;
    last[slot] = (uint32_t)i;
  }
  return false;
}

/*
 * The count above, on SAMPLES ranges of SAMPLE bytes spread over the block (a quarter of a 1 MiB
 * block): the whole block took half the time of compressing it.
 */
#define SAMPLES 4
#define SAMPLE (64 << 10)

static bool short_matches_many(const uint8_t *p, size_t n) {
  if (last_seen == NULL && (last_seen = malloc(sizeof(uint32_t) << MATCH_HASH_BITS)) == NULL) return true;
  if (n < SAMPLES * SAMPLE * 2) return short_matches_many_in(p, n, last_seen);
  for (size_t k = 0; k < SAMPLES; k++) {
    if (short_matches_many_in(p + k * (n / SAMPLES), SAMPLE, last_seen)) return true;
  }
  return false;
}

/*
 * The level for a block, by the share of its bytes that are printable ASCII, tab, CR or LF:
 * text (90% or more) 7, mixed (60% or more: text with some binary) 5, else (binaries, compressed or
 * packed data) 4, or 0 (stored) when incompressible (above). Per kind, the fastest level whose
 * output is no larger than zlib's 6 makes, or larger by under 1%, on a Debian root, a TypeScript
 * package, /usr/lib and /usr/share (1 MiB blocks): text at 6 was up to 1% larger (1.4% on JavaScript
 * alone), mixed at 4 up to 3.5%, binaries at 4 from 0.6% smaller to 0.3% larger (bench/README.md,
 * "gzip").
 */
static int auto_level(const uint8_t *p, size_t n) {
  size_t text = 0;
  for (size_t i = 0; i < n; i++) {
    uint8_t c = p[i];
    text += (c >= 32 && c < 127) | (c == '\n') | (c == '\r') | (c == '\t');
  }
  if (text * 10 >= n * 9) return 7;
  if (text * 10 >= n * 6) return 5;
  if (n >= PIECE && n <= UINT32_MAX && !short_matches_many(p, n) && order0_gain_small(p, n)) return 0;
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

static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

NAPI_MODULE_INIT() {
  napi_value fn, version;
  pthread_once(&tables_once, init_tables);
  napi_create_function(env, "gzip", NAPI_AUTO_LENGTH, gzip, NULL, &fn);
  napi_set_named_property(env, exports, "gzip", fn);
  napi_create_string_utf8(env, LIBDEFLATE_VERSION_STRING, NAPI_AUTO_LENGTH, &version);
  napi_set_named_property(env, exports, "libdeflateVersion", version);
  return exports;
}
