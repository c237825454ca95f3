/*
 * cairn_sys: the mount(2) and umount2(2) system calls, the reading of extended attributes
 * (llistxattr(2), lgetxattr(2)), sync_file_range(2), posix_fadvise(2) and writes through O_DIRECT,
 * which Node.js does not have.
 *
 * Without them every mount and unmount is a mount(8) or umount(8) process, and starting a process
 * from Node.js forks the whole Node.js process first: some 10 to 20 ms of the event loop's time
 * each, several times per container start and per build step. The calls here take microseconds
 * (an overlay mount a millisecond or two) and run on the calling thread, which is what mount(8)'s
 * caller was waiting for anyway.
 *
 * mount(source, target, fstype, flags, data) and umount2(target, flags) return undefined or throw an
 * Error whose `errno` is the (positive) error number; flags are the kernel's (MS_*, MNT_*), given
 * as `constants`.
 *
 * xattrs(path) gives the attributes of one file, never following a symlink: an array of
 * [name, Buffer] pairs, empty when it has none or its file system has none (ENOTSUP).
 * xattrTree(root) does the same for `root` and everything below it (nftw(3), symlinks not
 * followed, as `getfattr -R -P` walks), giving
 * [path, pairs] for the files that have attributes; paths are `root` as given, joined with `/`.
 * Without them each read was a getfattr(1) process: a fork of the whole Node.js process, 10 to
 * 20 ms of the event loop per commit of a container or build step.
 *
 * lstatDir(dir) gives a folder's entries, each lstat(2)-ed (fstatat, AT_SYMLINK_NOFOLLOW), in one
 * call: { names, stats } where stats holds STAT_FIELDS numbers per name (mode, uid, gid, rdev,
 * dev, ino, size, mtimeMs, ctimeMs, computed as Node's fs.Stats computes them), in readdir's order;
 * an entry gone between readdir and its lstat is left out. A build's checksum of its context
 * reads every file's metadata; through fs.readdirSync and fs.lstatSync, some 5 µs per file.
 *
 * Plain Node-API C: one build loads in every Node.js from 18 on.
 */
#define _GNU_SOURCE
#define _XOPEN_SOURCE 700
#define NAPI_VERSION 8
#include <node_api.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/xattr.h>
#include <ftw.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#define MAX_ARG 8192

/* A string argument (NULL for null or undefined); false when it is neither a string nor null. */
static bool string_arg(napi_env env, napi_value v, char **out) {
  napi_valuetype t;
  *out = NULL;
  if (napi_typeof(env, v, &t) != napi_ok) return false;
  if (t == napi_null || t == napi_undefined) return true;
  if (t != napi_string) return false;
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok || len > MAX_ARG) return false;
  *out = malloc(len + 1);
  if (*out == NULL) return false;
  napi_get_value_string_utf8(env, v, *out, len + 1, &len);
  return true;
}

/*
 * The one string argument of a call taking a path (in *out, to be freed); false, with a TypeError
 * thrown saying `usage`, when there is none.
 */
static bool path_arg(napi_env env, napi_callback_info info, const char *usage, char **out) {
  size_t argc = 1;
  napi_value argv[1];
  *out = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc >= 1 && string_arg(env, argv[0], out) && *out != NULL) return true;
  free(*out);
  *out = NULL;
  napi_throw_type_error(env, NULL, usage);
  return false;
}

static napi_value throw_errno(napi_env env, const char *call, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", call, strerror(err));
  napi_value message, error, code;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, NULL, message, &error);
  napi_create_int32(env, err, &code);
  napi_set_named_property(env, error, "errno", code);
  napi_throw(env, error);
  return NULL;
}

static napi_value do_mount(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5) {
    napi_throw_type_error(env, NULL, "mount(source, target, fstype, flags, data)");
    return NULL;
  }
  char *source = NULL, *target = NULL, *fstype = NULL, *data = NULL;
  int64_t flags = 0;
  napi_value result = NULL;
  if (!string_arg(env, argv[0], &source) || !string_arg(env, argv[1], &target) || target == NULL ||
      !string_arg(env, argv[2], &fstype) || napi_get_value_int64(env, argv[3], &flags) != napi_ok ||
      !string_arg(env, argv[4], &data)) {
    napi_throw_type_error(env, NULL, "mount: source, target, fstype and data are strings (or null), flags a number");
  } else if (mount(source, target, fstype, (unsigned long)flags, data) != 0) {
    throw_errno(env, "mount", errno);
  } else {
    napi_get_undefined(env, &result);
  }
  free(source);
  free(target);
  free(fstype);
  free(data);
  return result;
}

static napi_value do_umount2(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) {
    napi_throw_type_error(env, NULL, "umount2(target, flags)");
    return NULL;
  }
  char *target = NULL;
  int32_t flags = 0;
  napi_value result = NULL;
  if (!string_arg(env, argv[0], &target) || target == NULL || napi_get_value_int32(env, argv[1], &flags) != napi_ok) {
    napi_throw_type_error(env, NULL, "umount2: target is a string, flags a number");
  } else if (umount2(target, flags) != 0) {
    throw_errno(env, "umount2", errno);
  } else {
    napi_get_undefined(env, &result);
  }
  free(target);
  return result;
}

/*
 * The attributes of `path` as a JS array of [name, Buffer] (set in *out, left NULL when there
 * are none); 0, or an errno. ENOTSUP (no attributes on this file system) and ENODATA (one removed
 * meanwhile) are not errors.
 */
static int read_xattrs(napi_env env, const char *path, napi_value *out) {
  *out = NULL;
  ssize_t size = llistxattr(path, NULL, 0);
  if (size < 0) return errno == ENOTSUP ? 0 : errno;
  if (size == 0) return 0;
  char *names = NULL;
  for (int attempt = 0; attempt < 8; attempt++) {
    free(names);
    names = malloc((size_t)size);
    if (names == NULL) return ENOMEM;
    ssize_t got = llistxattr(path, names, (size_t)size);
    if (got >= 0) {
      size = got;
      break;
    }
    if (errno != ERANGE) {
      int err = errno;
      free(names);
      return err == ENOTSUP ? 0 : err;
    }
    size = llistxattr(path, NULL, 0); /* the list grew meanwhile */
    if (size < 0) {
      int err = errno;
      free(names);
      return err;
    }
    if (attempt == 7) {
      free(names);
      return ERANGE;
    }
  }
  uint32_t n = 0;
  for (ssize_t at = 0; at < size;) {
    const char *name = names + at;
    size_t len = strnlen(name, (size_t)(size - at));
    at += (ssize_t)len + 1;
    if (len == 0) continue;
    void *value = NULL;
    ssize_t vlen = 0;
    for (int attempt = 0; attempt < 8; attempt++) {
      vlen = lgetxattr(path, name, NULL, 0);
      if (vlen < 0) break;
      free(value);
      value = malloc(vlen > 0 ? (size_t)vlen : 1);
      if (value == NULL) {
        free(names);
        return ENOMEM;
      }
      ssize_t got = lgetxattr(path, name, value, (size_t)vlen);
      if (got >= 0) {
        vlen = got;
        break;
      }
      if (errno != ERANGE) {
        vlen = -1;
        break;
      }
      vlen = -1; /* grew meanwhile: ask again */
      errno = ERANGE;
    }
    if (vlen < 0) {
      int err = errno;
      free(value);
      if (err == ENODATA || err == ENOTSUP) continue;
      free(names);
      return err;
    }
    napi_value pair, jname, jvalue;
    void *data = NULL;
    napi_create_string_utf8(env, name, len, &jname);
    napi_create_buffer_copy(env, (size_t)vlen, value, &data, &jvalue);
    free(value);
    napi_create_array_with_length(env, 2, &pair);
    napi_set_element(env, pair, 0, jname);
    napi_set_element(env, pair, 1, jvalue);
    if (*out == NULL) napi_create_array(env, out);
    napi_set_element(env, *out, n++, pair);
  }
  free(names);
  return 0;
}

static napi_value do_xattrs(napi_env env, napi_callback_info info) {
  char *path;
  napi_value result = NULL;
  if (!path_arg(env, info, "xattrs(path): path is a string", &path)) return NULL;
  int err = read_xattrs(env, path, &result);
  free(path);
  if (err != 0) return throw_errno(env, "llistxattr", err);
  if (result == NULL) napi_create_array(env, &result);
  return result;
}

/* nftw(3) has no argument for its callback: the walk's state, one per thread (worker threads may walk at once). */
static _Thread_local struct {
  napi_env env;
  napi_value out;
  uint32_t n;
  int err;
  char failed[MAX_ARG];
} walk;

static int walk_one(const char *path, const struct stat *st, int type, struct FTW *ftw) {
  (void)st;
  (void)ftw;
  if (type == FTW_NS || type == FTW_DNR) {
    walk.err = errno != 0 ? errno : EACCES;
    snprintf(walk.failed, sizeof walk.failed, "%s", path);
    return 1;
  }
  napi_value pairs;
  int err = read_xattrs(walk.env, path, &pairs);
  if (err != 0) {
    walk.err = err;
    snprintf(walk.failed, sizeof walk.failed, "%s", path);
    return 1;
  }
  if (pairs == NULL) return 0;
  napi_value entry, jpath;
  napi_create_string_utf8(walk.env, path, NAPI_AUTO_LENGTH, &jpath);
  napi_create_array_with_length(walk.env, 2, &entry);
  napi_set_element(walk.env, entry, 0, jpath);
  napi_set_element(walk.env, entry, 1, pairs);
  napi_set_element(walk.env, walk.out, walk.n++, entry);
  return 0;
}

static napi_value do_xattr_tree(napi_env env, napi_callback_info info) {
  char *root;
  if (!path_arg(env, info, "xattrTree(root): root is a string", &root)) return NULL;
  walk.env = env;
  walk.n = 0;
  walk.err = 0;
  walk.failed[0] = 0;
  napi_create_array(env, &walk.out);
  int rc = nftw(root, walk_one, 64, FTW_PHYS);
  free(root);
  if (rc == -1 && walk.err == 0) return throw_errno(env, "nftw", errno);
  if (walk.err != 0) return throw_errno(env, walk.failed, walk.err);
  return walk.out;
}

#define STAT_FIELDS 9

static double ms_of(struct timespec t) {
  /* as Node's msFromTimeSpec: sec * 1e3 + nsec / 1e6, in doubles */
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* The error of lstatDir: `scandir DIR: …`, as Node's fs names it. */
static napi_value throw_scandir(napi_env env, char *path, int err) {
  char call[MAX_ARG + 16];
  snprintf(call, sizeof call, "scandir %s", path);
  free(path);
  return throw_errno(env, call, err);
}

static napi_value do_lstat_dir(napi_env env, napi_callback_info info) {
  char *path;
  if (!path_arg(env, info, "lstatDir(dir): dir is a string", &path)) return NULL;
  DIR *d = opendir(path);
  if (d == NULL) return throw_scandir(env, path, errno);
  int fd = dirfd(d);
  size_t cap = 64, n = 0;
  double *stats = malloc(cap * STAT_FIELDS * sizeof(double));
  if (stats == NULL) {
    closedir(d);
    return throw_scandir(env, path, ENOMEM);
  }
  napi_value names;
  napi_create_array(env, &names);
  int err = 0;
  for (;;) {
    errno = 0;
    struct dirent *e = readdir(d);
    if (e == NULL) {
      err = errno;
      break;
    }
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    struct stat st;
    if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue; /* gone meanwhile */
      err = errno;
      break;
    }
    if (n == cap) {
      cap *= 2;
      double *more = realloc(stats, cap * STAT_FIELDS * sizeof(double));
      if (more == NULL) {
        err = ENOMEM;
        break;
      }
      stats = more;
    }
    double *f = stats + n * STAT_FIELDS;
    f[0] = (double)st.st_mode;
    f[1] = (double)st.st_uid;
    f[2] = (double)st.st_gid;
    f[3] = (double)st.st_rdev;
    f[4] = (double)st.st_dev;
    f[5] = (double)st.st_ino;
    f[6] = (double)st.st_size;
    f[7] = ms_of(st.st_mtim);
    f[8] = ms_of(st.st_ctim);
    napi_value name;
    napi_create_string_utf8(env, e->d_name, NAPI_AUTO_LENGTH, &name);
    napi_set_element(env, names, (uint32_t)n, name);
    n++;
  }
  closedir(d);
  if (err != 0) {
    free(stats);
    return throw_scandir(env, path, err);
  }
  free(path);
  napi_value buffer, array, result;
  void *data = NULL;
  napi_create_arraybuffer(env, n * STAT_FIELDS * sizeof(double), &data, &buffer);
  if (n > 0) memcpy(data, stats, n * STAT_FIELDS * sizeof(double));
  free(stats);
  napi_create_typedarray(env, napi_float64_array, n * STAT_FIELDS, buffer, 0, &array);
  napi_create_object(env, &result);
  napi_set_named_property(env, result, "names", names);
  napi_set_named_property(env, result, "stats", array);
  return result;
}

/* Rejects `deferred` with an Error saying `message`, with an `errno` property when `with_errno`. */
static void reject_with(napi_env env, napi_deferred deferred, const char *message, bool with_errno, int err) {
  napi_value text, error;
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, NULL, text, &error);
  if (with_errno) {
    napi_value code;
    napi_create_int32(env, err, &code);
    napi_set_named_property(env, error, "errno", code);
  }
  napi_reject_deferred(env, deferred, error);
}

/* A pool job's failure: `call: <strerror>` ("cancelled" when it never ran), its errno with it. */
static void reject_job(napi_env env, napi_deferred deferred, const char *call, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", call, err != 0 ? strerror(err) : "cancelled");
  reject_with(env, deferred, msg, true, err);
}

/*
 * A promise for a job run on libuv's pool: `execute` there, then `complete` on the event loop, which
 * settles *deferred. NULL when no promise could be made (the caller frees the job and throws). When
 * the work could not be queued, *work is NULL, the promise is settled here (resolved with undefined
 * when `hint`: nothing was asked for; else rejected, `<call>: could not queue the call`), and the
 * caller frees the job.
 */
static napi_value start_job(napi_env env, const char *call, napi_async_execute_callback execute, napi_async_complete_callback complete,
                            void *job, bool hint, napi_deferred *deferred, napi_async_work *work) {
  napi_value promise, resource;
  if (napi_create_promise(env, deferred, &promise) != napi_ok) return NULL;
  char name[64];
  snprintf(name, sizeof name, "cairn:%s", call);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource);
  if (napi_create_async_work(env, NULL, resource, execute, complete, job, work) != napi_ok) {
    *work = NULL;
  } else if (napi_queue_async_work(env, *work) != napi_ok) {
    napi_delete_async_work(env, *work);
    *work = NULL;
  }
  if (*work == NULL) {
    /* the promise is the caller's: settled, never left pending */
    if (hint) {
      napi_value undefined;
      napi_get_undefined(env, &undefined);
      napi_resolve_deferred(env, *deferred, undefined);
    } else {
      char msg[128];
      snprintf(msg, sizeof msg, "%s: could not queue the call", call);
      reject_with(env, *deferred, msg, false, 0);
    }
  }
  return promise;
}

/*
 * syncFileRange(fd, offset, length) -> Promise<void>: sync_file_range(2) with SYNC_FILE_RANGE_WRITE,
 * which starts the write-out of that range's dirty pages without waiting for it to finish. It may
 * still wait for the device's queue, so it runs on libuv's pool, not on the event loop. A blob being
 * written asks for this as it goes, so that the fsync at its end waits for the last pieces only, not
 * for the whole file (a 90 MB layer's fsync took 100 ms of idle cores at the end of a push).
 */
typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int fd;
  int64_t offset, length;
  int err;
} range_job_t;

static void range_execute(napi_env env, void *data) {
  (void)env;
  range_job_t *j = data;
  j->err = sync_file_range(j->fd, j->offset, j->length, SYNC_FILE_RANGE_WRITE) == 0 ? 0 : errno;
}

static void range_complete(napi_env env, napi_status status, void *data) {
  range_job_t *j = data;
  napi_value result;
  if (status == napi_ok && j->err == 0) {
    napi_get_undefined(env, &result);
    napi_resolve_deferred(env, j->deferred, result);
  } else {
    reject_job(env, j->deferred, "sync_file_range", j->err);
  }
  napi_delete_async_work(env, j->work);
  free(j);
}

static napi_value do_sync_file_range(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd;
  int64_t offset, length;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int64(env, argv[1], &offset) != napi_ok ||
      napi_get_value_int64(env, argv[2], &length) != napi_ok || offset < 0 || length < 0) {
    napi_throw_type_error(env, NULL, "syncFileRange(fd, offset, length): numbers, offset and length not negative");
    return NULL;
  }
  range_job_t *j = calloc(1, sizeof *j);
  if (j == NULL) return throw_errno(env, "syncFileRange", ENOMEM);
  j->fd = fd;
  j->offset = offset;
  j->length = length;
  napi_value promise = start_job(env, "syncFileRange", range_execute, range_complete, j, false, &j->deferred, &j->work);
  if (promise == NULL || j->work == NULL) free(j);
  return promise != NULL ? promise : throw_errno(env, "syncFileRange", ENOMEM);
}

/*
 * willNeed(paths) -> Promise<void>: each file opened (never following a symlink) and given
 * posix_fadvise(POSIX_FADV_WILLNEED), which starts reading it into the page cache without waiting,
 * on libuv's pool. A build reads its context's small files one after another with synchronous
 * reads; where they are not cached (a context untouched for a while), each read waits for the
 * disk in turn. Asked for the next files ahead, the disk reads them all at once; where they are
 * cached, it costs a few microseconds per file off the event loop. Files that cannot be opened
 * are passed over: this is a hint, the read that follows reports what is wrong.
 */
typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  char **paths;
  uint32_t count;
} hint_job_t;

static void free_hint_job(hint_job_t *j) {
  for (uint32_t i = 0; i < j->count; i++) free(j->paths[i]);
  free(j->paths);
  free(j);
}

static void hint_execute(napi_env env, void *data) {
  (void)env;
  hint_job_t *j = data;
  for (uint32_t i = 0; i < j->count; i++) {
    int fd = open(j->paths[i], O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) continue;
    posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
    close(fd);
  }
}

static void hint_complete(napi_env env, napi_status status, void *data) {
  (void)status;
  hint_job_t *j = data;
  napi_value result;
  napi_get_undefined(env, &result);
  napi_resolve_deferred(env, j->deferred, result);
  napi_delete_async_work(env, j->work);
  free_hint_job(j);
}

static napi_value do_will_need(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  bool is_array = false;
  uint32_t n = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[0], &n) != napi_ok) {
    napi_throw_type_error(env, NULL, "willNeed(paths): an array of strings");
    return NULL;
  }
  hint_job_t *j = calloc(1, sizeof *j);
  if (j == NULL || (n > 0 && (j->paths = calloc(n, sizeof(char *))) == NULL)) {
    free(j);
    return throw_errno(env, "willNeed", ENOMEM);
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    char *path = NULL;
    if (napi_get_element(env, argv[0], i, &v) != napi_ok || !string_arg(env, v, &path) || path == NULL) {
      free(path);
      free_hint_job(j);
      napi_throw_type_error(env, NULL, "willNeed(paths): an array of strings");
      return NULL;
    }
    j->paths[j->count++] = path;
  }
  napi_value promise = start_job(env, "willNeed", hint_execute, hint_complete, j, true, &j->deferred, &j->work);
  if (promise == NULL || j->work == NULL) free_hint_job(j);
  return promise != NULL ? promise : throw_errno(env, "willNeed", ENOMEM);
}

/*
 * writeAt(fd, position, buffers, direct) -> Promise<boolean>: the buffers written one after the
 * other from `position` (pwrite(2), short writes continued), on libuv's pool.
 *
 * With `direct` the file is switched to O_DIRECT (fcntl(2)) and the bytes go from an aligned buffer
 * of this addon straight to the device, past the page cache: `position` and the length must then
 * be multiples of DIRECT_ALIGN, the length at most DIRECT_MAX. The promise resolves true. Where the
 * file system refuses O_DIRECT the bytes are written through the page cache and it resolves false.
 * Without `direct`, a file switched before is switched back, and any position and length do.
 *
 * Why: a blob written into the store is read back rarely and soon synced anyway, and putting it in
 * the page cache costs more than writing it. Every page of it must be allocated first, and on a
 * virtual machine whose free memory goes back to the host, as on the machines this runs on, the
 * first touch of such a page is a fault in the host: 96 MB written took 200 ms of system time that
 * way, against 10 ms through O_DIRECT, which wrote it at 2 GB/s. The aligned buffers are reused
 * (at most DIRECT_SPARES kept), so their pages are touched once.
 */
#define DIRECT_ALIGN 4096
#define DIRECT_MAX (1 << 20)
#define DIRECT_SPARES 4

static pthread_mutex_t spare_lock = PTHREAD_MUTEX_INITIALIZER;
static void *spares[DIRECT_SPARES];
static int spare_count = 0;

static void *take_aligned(void) {
  void *p = NULL;
  pthread_mutex_lock(&spare_lock);
  if (spare_count > 0) p = spares[--spare_count];
  pthread_mutex_unlock(&spare_lock);
  if (p == NULL && posix_memalign(&p, DIRECT_ALIGN, DIRECT_MAX) != 0) p = NULL;
  return p;
}

static void give_aligned(void *p) {
  pthread_mutex_lock(&spare_lock);
  if (spare_count < DIRECT_SPARES) {
    spares[spare_count++] = p;
    p = NULL;
  }
  pthread_mutex_unlock(&spare_lock);
  free(p);
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int fd;
  int64_t position;
  bool direct;
  bool went_direct;
  uint32_t count;
  napi_ref *refs;
  const uint8_t **data;
  size_t *lengths;
  int err;
} write_job_t;

static void free_write_job(napi_env env, write_job_t *j) {
  for (uint32_t i = 0; i < j->count; i++) if (j->refs[i] != NULL) napi_delete_reference(env, j->refs[i]);
  free(j->refs);
  free(j->data);
  free(j->lengths);
  free(j);
}

/* All of [p, p + n) written at *pos; 0 or an errno. */
static int pwrite_all(int fd, const uint8_t *p, size_t n, int64_t *pos) {
  while (n > 0) {
    ssize_t w = pwrite(fd, p, n, *pos);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (w == 0) return EIO;
    p += w;
    n -= (size_t)w;
    *pos += w;
  }
  return 0;
}

static void write_execute(napi_env env, void *data) {
  (void)env;
  write_job_t *j = data;
  int flags = fcntl(j->fd, F_GETFL);
  if (flags < 0) {
    j->err = errno;
    return;
  }
  void *aligned = NULL;
  if (j->direct) {
    if ((flags & O_DIRECT) != 0 || fcntl(j->fd, F_SETFL, flags | O_DIRECT) == 0) aligned = take_aligned();
    /* refused (EINVAL: the file system has no O_DIRECT) or no memory: through the page cache */
    if (aligned == NULL && (flags & O_DIRECT) != 0 && fcntl(j->fd, F_SETFL, flags & ~O_DIRECT) != 0) {
      j->err = errno;
      return;
    }
  } else if ((flags & O_DIRECT) != 0 && fcntl(j->fd, F_SETFL, flags & ~O_DIRECT) != 0) {
    j->err = errno;
    return;
  }
  int64_t pos = j->position;
  if (aligned != NULL) {
    size_t n = 0;
    for (uint32_t i = 0; i < j->count; i++) {
      memcpy((uint8_t *)aligned + n, j->data[i], j->lengths[i]);
      n += j->lengths[i];
    }
    j->err = pwrite_all(j->fd, aligned, n, &pos);
    give_aligned(aligned);
    j->went_direct = j->err == 0;
    return;
  }
  for (uint32_t i = 0; i < j->count && j->err == 0; i++) j->err = pwrite_all(j->fd, j->data[i], j->lengths[i], &pos);
}

static void write_complete(napi_env env, napi_status status, void *data) {
  write_job_t *j = data;
  napi_value result;
  if (status == napi_ok && j->err == 0) {
    napi_get_boolean(env, j->went_direct, &result);
    napi_resolve_deferred(env, j->deferred, result);
  } else {
    reject_job(env, j->deferred, "write", j->err);
  }
  napi_delete_async_work(env, j->work);
  free_write_job(env, j);
}

static napi_value do_write_at(napi_env env, napi_callback_info info) {
  static const char *usage = "writeAt(fd, position, buffers, direct): a number, a position not negative, an array of Uint8Arrays, a boolean; "
                             "direct: position and length multiples of 4096, length at most 1 MiB";
  size_t argc = 4;
  napi_value argv[4];
  int32_t fd;
  int64_t position;
  bool is_array = false, direct = false;
  uint32_t n = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int64(env, argv[1], &position) != napi_ok || position < 0 ||
      napi_is_array(env, argv[2], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[2], &n) != napi_ok ||
      napi_get_value_bool(env, argv[3], &direct) != napi_ok) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  write_job_t *j = calloc(1, sizeof *j);
  if (j == NULL || (n > 0 && ((j->refs = calloc(n, sizeof(napi_ref))) == NULL || (j->data = calloc(n, sizeof(uint8_t *))) == NULL ||
                              (j->lengths = calloc(n, sizeof(size_t))) == NULL))) {
    if (j != NULL) free_write_job(env, j);
    return throw_errno(env, "writeAt", ENOMEM);
  }
  j->fd = fd;
  j->position = position;
  j->direct = direct;
  size_t total = 0;
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    bool is_typed = false;
    napi_typedarray_type type;
    size_t length = 0;
    void *bytes = NULL;
    if (napi_get_element(env, argv[2], i, &v) != napi_ok || napi_is_typedarray(env, v, &is_typed) != napi_ok || !is_typed ||
        napi_get_typedarray_info(env, v, &type, &length, &bytes, NULL, NULL) != napi_ok || type != napi_uint8_array) {
      free_write_job(env, j);
      napi_throw_type_error(env, NULL, usage);
      return NULL;
    }
    /* the bytes stay where they are while the job holds their array */
    if (napi_create_reference(env, v, 1, &j->refs[j->count]) != napi_ok) {
      free_write_job(env, j);
      return throw_errno(env, "writeAt", ENOMEM);
    }
    j->data[j->count] = bytes;
    j->lengths[j->count] = length;
    j->count++;
    total += length;
  }
  if (direct && (position % DIRECT_ALIGN != 0 || total % DIRECT_ALIGN != 0 || total > DIRECT_MAX)) {
    free_write_job(env, j);
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  napi_value promise = start_job(env, "writeAt", write_execute, write_complete, j, false, &j->deferred, &j->work);
  if (promise == NULL || j->work == NULL) free_write_job(env, j);
  return promise != NULL ? promise : throw_errno(env, "writeAt", ENOMEM);
}

static void set_constant(napi_env env, napi_value obj, const char *name, int64_t v) {
  napi_value n;
  napi_create_int64(env, v, &n);
  napi_set_named_property(env, obj, name, n);
}

NAPI_MODULE_INIT() {
  napi_value fn, constants;
  napi_create_function(env, "mount", NAPI_AUTO_LENGTH, do_mount, NULL, &fn);
  napi_set_named_property(env, exports, "mount", fn);
  napi_create_function(env, "umount2", NAPI_AUTO_LENGTH, do_umount2, NULL, &fn);
  napi_set_named_property(env, exports, "umount2", fn);
  napi_create_function(env, "xattrs", NAPI_AUTO_LENGTH, do_xattrs, NULL, &fn);
  napi_set_named_property(env, exports, "xattrs", fn);
  napi_create_function(env, "xattrTree", NAPI_AUTO_LENGTH, do_xattr_tree, NULL, &fn);
  napi_set_named_property(env, exports, "xattrTree", fn);
  napi_create_function(env, "lstatDir", NAPI_AUTO_LENGTH, do_lstat_dir, NULL, &fn);
  napi_set_named_property(env, exports, "lstatDir", fn);
  napi_create_function(env, "syncFileRange", NAPI_AUTO_LENGTH, do_sync_file_range, NULL, &fn);
  napi_set_named_property(env, exports, "syncFileRange", fn);
  napi_create_function(env, "willNeed", NAPI_AUTO_LENGTH, do_will_need, NULL, &fn);
  napi_set_named_property(env, exports, "willNeed", fn);
  napi_create_function(env, "writeAt", NAPI_AUTO_LENGTH, do_write_at, NULL, &fn);
  napi_set_named_property(env, exports, "writeAt", fn);
  napi_create_object(env, &constants);
  set_constant(env, constants, "MS_RDONLY", MS_RDONLY);
  set_constant(env, constants, "MS_REMOUNT", MS_REMOUNT);
  set_constant(env, constants, "MS_BIND", MS_BIND);
  set_constant(env, constants, "MS_REC", MS_REC);
  set_constant(env, constants, "MNT_DETACH", MNT_DETACH);
  set_constant(env, constants, "EINVAL", EINVAL);
  set_constant(env, constants, "ENOENT", ENOENT);
  set_constant(env, constants, "ENOTSUP", ENOTSUP);
  napi_set_named_property(env, exports, "constants", constants);
  return exports;
}
