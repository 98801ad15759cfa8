using System.Runtime.InteropServices;

namespace Shim.Os.Interop;

/// <summary>Process creation, waiting, signals and process attributes.</summary>
internal static unsafe partial class Libc
{
    [LibraryImport("libc", SetLastError = true)]
    internal static partial int getpid();

    [LibraryImport("libc", SetLastError = true)]
    internal static partial uint geteuid();

    [LibraryImport("libc", SetLastError = true)]
    internal static partial uint getegid();

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int kill(int pid, int signal);

    /// <summary>getrlimit(2): <paramref name="limit"/> points at { rlim_cur, rlim_max } (two 64-bit values).</summary>
    [LibraryImport("libc", SetLastError = true)]
    internal static partial int getrlimit(int resource, ulong* limit);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int setrlimit(int resource, ulong* limit);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int execve(byte* path, byte** argv, byte** envp);

    /// <summary>glibc 2.36+ (Linux 5.3+).</summary>
    [LibraryImport("libc", SetLastError = true)]
    internal static partial int pidfd_open(int pid, uint flags);

    /// <summary>glibc 2.36+ (Linux 5.1+); <paramref name="info"/> null sends as kill(2) would.</summary>
    [LibraryImport("libc", SetLastError = true)]
    internal static partial int pidfd_send_signal(int pidfd, int signal, nint info, uint flags);

    // prctl is variadic; every argument is passed in an integer register, so a fixed
    // five-argument declaration is ABI-compatible on x64 and arm64.
    [LibraryImport("libc", SetLastError = true)]
    internal static partial int prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int waitid(int idtype, int id, byte* info, int options);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int wait4(int pid, out int status, int options, nint rusage);

    // posix_spawn and friends return the error number instead of setting errno.
    [LibraryImport("libc")]
    internal static partial int posix_spawn(out int pid, byte* path, void* fileActions, void* attr, byte** argv, byte** envp);

    [LibraryImport("libc")]
    internal static partial int posix_spawn_file_actions_init(void* fileActions);

    [LibraryImport("libc")]
    internal static partial int posix_spawn_file_actions_destroy(void* fileActions);

    [LibraryImport("libc")]
    internal static partial int posix_spawn_file_actions_adddup2(void* fileActions, int fd, int newFd);

    [LibraryImport("libc")]
    internal static partial int posix_spawn_file_actions_addclose(void* fileActions, int fd);

    [LibraryImport("libc")]
    internal static partial int posix_spawn_file_actions_addopen(void* fileActions, int fd, byte* path, int flags, int mode);

    /// <summary>glibc 2.29+.</summary>
    [LibraryImport("libc")]
    internal static partial int posix_spawn_file_actions_addchdir_np(void* fileActions, byte* path);

    /// <summary>glibc 2.34+.</summary>
    [LibraryImport("libc")]
    internal static partial int posix_spawn_file_actions_addclosefrom_np(void* fileActions, int from);

    [LibraryImport("libc")]
    internal static partial int posix_spawnattr_init(void* attr);

    [LibraryImport("libc")]
    internal static partial int posix_spawnattr_destroy(void* attr);

    [LibraryImport("libc")]
    internal static partial int posix_spawnattr_setflags(void* attr, short flags);

    [LibraryImport("libc")]
    internal static partial int posix_spawnattr_setpgroup(void* attr, int pgroup);

    [LibraryImport("libc")]
    internal static partial int posix_spawnattr_setsigmask(void* attr, void* sigset);

    [LibraryImport("libc")]
    internal static partial int posix_spawnattr_setsigdefault(void* attr, void* sigset);

    [LibraryImport("libc")]
    internal static partial int sigemptyset(void* sigset);

    [LibraryImport("libc")]
    internal static partial int sigfillset(void* sigset);
}
