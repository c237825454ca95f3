/*
 * The escape battery's probe, built static and run inside containers (Cairn's and Docker's):
 * each case tries one thing a process in a container must not be able to do, and prints
 * "allowed" or "refused <errno name>". Every case is harmless when it succeeds: reboot only asks
 * to turn Ctrl-Alt-Del off (in a PID namespace the kernel refuses that), module loading gets an
 * empty image, swapon a missing file, the /proc writes only open the file, the block device is
 * only read, and the mounts are made in the container's own mount namespace.
 *
 *   probe CASE [ARG]
 *   probe --each CASE[=ARG]...    every case in a child process of its own, one
 *                                 "CASE: outcome" line each, in order
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/keyctl.h>
#include <linux/reboot.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* "allowed", or "refused ERRNO at STEP" */
static int result_at(int rc, const char *step) {
  if (rc == 0) {
    puts("allowed");
    return 0;
  }
  const char *name = strerrorname_np(errno);
  printf("refused %s at %s\n", name ? name : "?", step);
  return 1;
}

static int write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY);
  if (fd < 0) return -1;
  ssize_t n = write(fd, text, strlen(text));
  int saved = errno;
  close(fd);
  errno = saved;
  return n == (ssize_t)strlen(text) ? 0 : -1;
}

static int run_case(const char *c, const char *arg) {
  if (!strcmp(c, "mount-proc")) {
    mkdir("/tmp/probe-proc", 0755);
    return result_at(mount("proc", "/tmp/probe-proc", "proc", 0, NULL), "mount");
  }
  if (!strcmp(c, "userns-mount")) {
    /* a user namespace of one's own, root in it (unshare --user --map-root-user), then a mount */
    char map[64];
    snprintf(map, sizeof map, "0 %d 1", (int)getuid());
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) return result_at(-1, "unshare");
    write_file("/proc/self/setgroups", "deny");
    if (write_file("/proc/self/uid_map", map) != 0) return result_at(-1, "uid_map");
    mkdir("/tmp/probe-userns", 0755);
    return result_at(mount("tmpfs", "/tmp/probe-userns", "tmpfs", 0, NULL), "mount");
  }
  if (!strcmp(c, "keyctl")) {
    long id = syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, "cairn-probe");
    return result_at(id < 0 ? -1 : 0, "keyctl");
  }
  if (!strcmp(c, "reboot")) {
    /* Ctrl-Alt-Del off: needs CAP_SYS_BOOT; in a PID namespace the kernel then says EINVAL */
    long rc = syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_CAD_OFF, NULL);
    if (rc != 0 && errno == EINVAL) {
      puts("allowed (EINVAL in a PID namespace)");
      return 0;
    }
    return result_at(rc == 0 ? 0 : -1, "reboot");
  }
  if (!strcmp(c, "swapon")) {
    int rc = swapon("/tmp/probe-no-such-swap", 0);
    if (rc != 0 && errno == ENOENT) {
      puts("allowed (ENOENT)");
      return 0;
    }
    return result_at(rc, "swapon");
  }
  if (!strcmp(c, "init_module")) {
    char image[16] = {0};
    long rc = syscall(SYS_init_module, image, sizeof image, "");
    if (rc != 0 && errno != EPERM && errno != ENOSYS && errno != EACCES) {
      printf("allowed (%s)\n", strerrorname_np(errno));
      return 0;
    }
    return result_at(rc == 0 ? 0 : -1, "init_module");
  }
  if (!strcmp(c, "finit_module")) {
    int fd = open("/dev/null", O_RDONLY);
    long rc = syscall(SYS_finit_module, fd, "", 0);
    if (rc != 0 && errno != EPERM && errno != ENOSYS && errno != EACCES) {
      printf("allowed (%s)\n", strerrorname_np(errno));
      return 0;
    }
    return result_at(rc == 0 ? 0 : -1, "finit_module");
  }
  if (!strcmp(c, "ptrace-host")) {
    /* a host process by its host PID */
    pid_t pid = (pid_t)atoi(arg);
    return result_at(ptrace(PTRACE_ATTACH, pid, NULL, NULL) == 0 ? 0 : -1, "ptrace");
  }
  if (!strcmp(c, "open_by_handle_at")) {
    /* "shocker": a file handle (of a file on the host's file system, bind-mounted here), opened by handle */
    const char *paths[] = {"/etc/hostname", "/etc/hosts", "/dev", "/"};
    struct file_handle *h = malloc(sizeof *h + MAX_HANDLE_SZ);
    int mount_id, got = -1;
    for (unsigned i = 0; i < sizeof paths / sizeof *paths && got != 0; i++) {
      h->handle_bytes = MAX_HANDLE_SZ;
      got = name_to_handle_at(AT_FDCWD, paths[i], h, &mount_id, 0);
    }
    if (got != 0) return result_at(-1, "name_to_handle_at");
    int mnt = open("/etc", O_RDONLY | O_DIRECTORY);
    int fd = open_by_handle_at(mnt, h, O_RDONLY);
    return result_at(fd < 0 ? -1 : 0, "open_by_handle_at");
  }
  if (!strcmp(c, "write-sysrq")) {
    /* opened for writing only: nothing is written */
    int fd = open("/proc/sysrq-trigger", O_WRONLY);
    return result_at(fd < 0 ? -1 : 0, "open");
  }
  if (!strcmp(c, "write-proc-sys-kernel")) {
    int fd = open("/proc/sys/kernel/core_pattern", O_WRONLY);
    return result_at(fd < 0 ? -1 : 0, "open");
  }
  if (!strcmp(c, "read-sys-firmware")) {
    DIR *d = opendir("/sys/firmware");
    if (!d) return result_at(-1, "opendir");
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
      if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    if (n == 0) {
      puts("refused empty at readdir");
      return 1;
    }
    printf("allowed (%d entries)\n", n);
    return 0;
  }
  if (!strcmp(c, "mknod-block")) {
    /* ARG: MAJOR:MINOR of a host block device; made here, then read */
    unsigned maj = 0, min = 0;
    sscanf(arg, "%u:%u", &maj, &min);
    unlink("/tmp/probe-blk");
    if (mknod("/tmp/probe-blk", S_IFBLK | 0600, makedev(maj, min)) != 0) return result_at(-1, "mknod");
    int fd = open("/tmp/probe-blk", O_RDONLY);
    if (fd < 0) return result_at(-1, "open");
    char buf[512];
    return result_at(read(fd, buf, sizeof buf) == (ssize_t)sizeof buf ? 0 : -1, "read");
  }
  if (!strcmp(c, "chroot-escape")) {
    /* the classic: chroot into a subfolder, climb out of it, chroot to where one is; ARG: a host file */
    mkdir("/tmp/probe-jail", 0755);
    int outside = open("/", O_RDONLY | O_DIRECTORY);
    if (chroot("/tmp/probe-jail") != 0) return result_at(-1, "chroot");
    if (fchdir(outside) != 0) return result_at(-1, "fchdir");
    for (int i = 0; i < 64; i++) chdir("..");
    chroot(".");
    if (access(arg, F_OK) == 0) {
      puts("allowed (the host's file is visible)");
      return 0;
    }
    puts("refused ENOENT at access (the container's own root)");
    return 1;
  }
  if (!strcmp(c, "raw-socket")) {
    int s = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    return result_at(s < 0 ? -1 : 0, "socket");
  }
  if (!strcmp(c, "tmpfs-mount")) {
    mkdir("/tmp/probe-tmpfs", 0755);
    return result_at(mount("tmpfs", "/tmp/probe-tmpfs", "tmpfs", 0, "size=1m"), "mount");
  }
  fprintf(stderr, "probe: unknown case %s\n", c);
  return 2;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: probe CASE [ARG] | probe --each CASE[=ARG]...\n");
    return 2;
  }
  if (strcmp(argv[1], "--each") != 0) return run_case(argv[1], argc > 2 ? argv[2] : "");
  for (int i = 2; i < argc; i++) {
    char name[256];
    snprintf(name, sizeof name, "%s", argv[i]);
    char *eq = strchr(name, '=');
    const char *arg = "";
    if (eq) {
      *eq = 0;
      arg = eq + 1;
    }
    printf("%s: ", name);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
      printf("error fork %s\n", strerrorname_np(errno));
      return 2;
    }
    if (pid == 0) {
      int rc = run_case(name, arg);
      fflush(stdout);
      _exit(rc);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) == 2) {
      printf("error (status %d)\n", status);
      fflush(stdout);
    }
  }
  return 0;
}
