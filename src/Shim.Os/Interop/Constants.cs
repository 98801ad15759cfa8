namespace Shim.Os.Interop;

// Every number handed to or read from libc lives here. Values are for Linux x64; where arm64
// (aarch64) differs it is noted beside the constant and handled at runtime.

/// <summary>errno values (asm-generic; identical on x64 and arm64).</summary>
internal static partial class Errno
{
    internal const int EPERM = 1;
    internal const int ENOENT = 2;
    internal const int ESRCH = 3;
    internal const int EINTR = 4;
    internal const int EIO = 5;
    internal const int EBADF = 9;
    internal const int ECHILD = 10;
    internal const int EAGAIN = 11;
    internal const int ENOMEM = 12;
    internal const int EACCES = 13;
    internal const int EBUSY = 16;
    internal const int EEXIST = 17;
    internal const int ENOTDIR = 20;
    internal const int EINVAL = 22;
    internal const int ENOSPC = 28;
    internal const int EPIPE = 32;
    internal const int ENOSYS = 38;
    internal const int ENFILE = 23;
    internal const int EMFILE = 24;
    internal const int ECONNABORTED = 103;
    internal const int ECONNRESET = 104;
    internal const int EADDRINUSE = 98;
    internal const int ENOTCONN = 107;
    internal const int EINPROGRESS = 115;
    internal const int ECANCELED = 125;

    /// <summary>errno of the last LibraryImport call made with SetLastError = true on this thread.</summary>
    internal static int Last => System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
}

internal static partial class Libc
{
    // open(2) flags (x64 and arm64 agree on the ones below except where noted)
    internal const int O_RDONLY = 0;
    internal const int O_WRONLY = 1;
    internal const int O_RDWR = 2;
    internal const int O_CREAT = 0x40;
    internal const int O_NOCTTY = 0x100;
    internal const int O_TRUNC = 0x200;
    internal const int O_APPEND = 0x400;
    internal const int O_NONBLOCK = 0x800;
    internal const int O_DIRECTORY = 0x10000;   // arm64: 0x4000
    internal const int O_CLOEXEC = 0x80000;
    internal const int AT_FDCWD = -100;
    internal const int AT_EMPTY_PATH = 0x1000;

    // fcntl(2)
    internal const int F_GETFD = 1;
    internal const int F_SETFD = 2;
    internal const int F_GETFL = 3;
    internal const int F_SETFL = 4;
    internal const int FD_CLOEXEC = 1;
    internal const int F_SETPIPE_SZ = 1031;
    internal const int F_GETPIPE_SZ = 1032;

    // statx(2): arch-independent layout, so no struct stat differences to worry about
    internal const int STATX_TYPE = 0x1;
    internal const int STATX_UID = 0x8;
    internal const int STATX_GID = 0x10;
    internal const int StatxSize = 256;
    internal const int StatxUidOffset = 0x14;   // __u32 stx_uid
    internal const int StatxGidOffset = 0x18;   // __u32 stx_gid
    internal const int StatxModeOffset = 0x1C;  // __u16 stx_mode
    internal const int S_IFMT = 0xF000;
    internal const int S_IFIFO = 0x1000;
    internal const int S_IFCHR = 0x2000;
    internal const int S_IFREG = 0x8000;
    internal const int S_IFDIR = 0x4000;

    // splice(2)
    internal const uint SPLICE_F_MOVE = 1;
    internal const uint SPLICE_F_NONBLOCK = 2;

    // eventfd(2)
    internal const int EFD_NONBLOCK = 0x800;
    internal const int EFD_CLOEXEC = 0x80000;

    // epoll(7)
    internal const int EPOLL_CLOEXEC = 0x80000;
    internal const int EPOLL_CTL_ADD = 1;
    internal const int EPOLL_CTL_DEL = 2;
    internal const int EPOLL_CTL_MOD = 3;
    internal const uint EPOLLIN = 0x001;
    internal const uint EPOLLOUT = 0x004;
    internal const uint EPOLLERR = 0x008;
    internal const uint EPOLLHUP = 0x010;
    internal const uint EPOLLRDHUP = 0x2000;
    internal const uint EPOLLET = 1u << 31;
    // struct epoll_event is __attribute__((packed)) on x64 only: 12 bytes with data at offset 4.
    // arm64 uses natural alignment: 16 bytes with data at offset 8.
    internal static readonly int EpollEventSize = IsX64Layout ? 12 : 16;
    internal static readonly int EpollEventDataOffset = IsX64Layout ? 4 : 8;

    // wait(2) family
    internal const int RLIMIT_NOFILE = 7;
    internal const int P_ALL = 0;
    internal const int P_PID = 1;
    internal const int WNOHANG = 1;
    internal const int WEXITED = 4;
    internal const int WNOWAIT = 0x01000000;
    // siginfo_t: 128 bytes; si_signo @0, si_errno @4, si_code @8, (pad) si_pid @16, si_uid @20,
    // si_status @24 on every 64-bit Linux ABI (x64 and arm64 agree).
    internal const int SiginfoSize = 128;
    internal const int SiginfoPidOffset = 16;
    internal const int SiginfoStatusOffset = 24;

    // prctl(2)
    internal const int PR_SET_CHILD_SUBREAPER = 36;
    internal const int PR_GET_CHILD_SUBREAPER = 37;
    internal const int PR_SCHED_CORE = 62;          // include/uapi/linux/prctl.h, the same on every architecture
    internal const int PR_SCHED_CORE_CREATE = 1;
    internal const int PIDTYPE_PGID = 2;            // enum pid_type (include/linux/pid.h), as PR_SCHED_CORE takes it

    // posix_spawn(3), glibc values
    internal const short POSIX_SPAWN_SETPGROUP = 0x02;
    internal const short POSIX_SPAWN_SETSIGDEF = 0x04;
    internal const short POSIX_SPAWN_SETSIGMASK = 0x08;
    internal const short POSIX_SPAWN_SETSID = 0x80;
    // glibc sizes are 80 (file actions) and 336 (attr) bytes on 64-bit; allocate generously.
    internal const int SpawnFileActionsSize = 256;
    internal const int SpawnAttrSize = 1024;
    internal const int SigsetSize = 128;

    // mount(2)
    internal const ulong MS_RDONLY = 0x1;
    internal const ulong MS_NOSUID = 0x2;
    internal const ulong MS_NODEV = 0x4;
    internal const ulong MS_NOEXEC = 0x8;
    internal const ulong MS_SYNCHRONOUS = 0x10;
    internal const ulong MS_REMOUNT = 0x20;
    internal const ulong MS_MANDLOCK = 0x40;
    internal const ulong MS_DIRSYNC = 0x80;
    internal const ulong MS_NOATIME = 0x400;
    internal const ulong MS_NODIRATIME = 0x800;
    internal const ulong MS_BIND = 0x1000;
    internal const ulong MS_REC = 0x4000;
    internal const ulong MS_UNBINDABLE = 0x20000;
    internal const ulong MS_PRIVATE = 0x40000;
    internal const ulong MS_SLAVE = 0x80000;
    internal const ulong MS_SHARED = 0x100000;
    internal const ulong MS_RELATIME = 0x200000;
    internal const ulong MS_STRICTATIME = 0x1000000;
    internal const int MNT_DETACH = 2;

    // statvfs(3) f_flag bits and layout (64-bit: f_flag is the 10th unsigned long, offset 72)
    internal const ulong ST_RDONLY = 1;
    internal const ulong ST_NOSUID = 2;
    internal const ulong ST_NODEV = 4;
    internal const ulong ST_NOEXEC = 8;
    internal const ulong ST_NOATIME = 1024;
    internal const ulong ST_NODIRATIME = 2048;
    internal const ulong ST_RELATIME = 4096;
    internal const int StatvfsSize = 112;
    internal const int StatvfsFlagOffset = 72;

    // sockets
    internal const int SOL_SOCKET = 1;
    internal const int SO_PEERCRED = 17;   // struct ucred { pid_t pid; uid_t uid; gid_t gid; } = 12 bytes
    internal const int SO_ERROR = 4;
    internal const int AF_UNIX = 1;
    internal const int SOCK_STREAM = 1;
    internal const int SOCK_NONBLOCK = 0x800;
    internal const int SOCK_CLOEXEC = 0x80000;
    internal const int SHUT_RDWR = 2;
    internal const int SockaddrUnSize = 110;   // sa_family_t + char sun_path[108]
    internal const int SunPathOffset = 2;

    // signal masks and signalfd(2)
    internal const int SIG_BLOCK = 0;
    internal const int SFD_NONBLOCK = 0x800;
    internal const int SFD_CLOEXEC = 0x80000;
    internal const int SignalfdSiginfoSize = 128;   // ssi_signo: u32 at offset 0

    // signals (x64 and arm64 agree)
    internal const int SIGINT = 2;
    internal const int SIGKILL = 9;
    internal const int SIGUSR1 = 10;
    internal const int SIGTERM = 15;
    internal const int SIGCHLD = 17;

    private static bool IsX64Layout =>
        System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture
            is System.Runtime.InteropServices.Architecture.X64 or System.Runtime.InteropServices.Architecture.X86;
}
