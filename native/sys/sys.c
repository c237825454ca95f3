/*
 * cairn_sys: the mount(2) and umount2(2) system calls, which Node.js does not have.
 *
 * Without them every mount and unmount is a mount(8) or umount(8) process, and starting a process
 * from Node.js forks the whole Node.js process first: some 10 to 20 ms of the event loop's time
 * each, several times per container start and per build step. The calls here take microseconds
 * (an overlay mount a millisecond or two) and run on the calling thread, which is what mount(8)'s
 * caller was waiting for anyway.
 *
 * mount(source, target, fstype, flags, data) and umount2(target, flags) return undefined or throw an
 * Error whose `errno` is the (positive) error number; flags are the kernel's (MS_*, MNT_*), given
 * as `constants`. Plain Node-API C: one build loads in every Node.js from 18 on.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

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
  napi_create_object(env, &constants);
  set_constant(env, constants, "MS_RDONLY", MS_RDONLY);
  set_constant(env, constants, "MS_REMOUNT", MS_REMOUNT);
  set_constant(env, constants, "MS_BIND", MS_BIND);
  set_constant(env, constants, "MS_REC", MS_REC);
  set_constant(env, constants, "MNT_DETACH", MNT_DETACH);
  set_constant(env, constants, "EINVAL", EINVAL);
  set_constant(env, constants, "ENOENT", ENOENT);
  napi_set_named_property(env, exports, "constants", constants);
  return exports;
}
