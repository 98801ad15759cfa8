using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Shim.Os.Interop;

// the constants keep the kernel's names (open(2) flags), so they can be looked up in its headers
#pragma warning disable CA1707

namespace Shim.Os;

/// <summary>Opening and adjusting file descriptors.</summary>
public static class Fds
{
    /// <summary>O_RDONLY.</summary>
    public const int O_RDONLY = Libc.O_RDONLY;
    /// <summary>O_WRONLY.</summary>
    public const int O_WRONLY = Libc.O_WRONLY;
    /// <summary>O_RDWR.</summary>
    public const int O_RDWR = Libc.O_RDWR;
    /// <summary>O_CREAT.</summary>
    public const int O_CREAT = Libc.O_CREAT;
    /// <summary>O_APPEND.</summary>
    public const int O_APPEND = Libc.O_APPEND;
    /// <summary>O_NONBLOCK.</summary>
    public const int O_NONBLOCK = Libc.O_NONBLOCK;
    /// <summary>O_CLOEXEC.</summary>
    public const int O_CLOEXEC = Libc.O_CLOEXEC;
    /// <summary>O_TRUNC.</summary>
    public const int O_TRUNC = Libc.O_TRUNC;
    /// <summary>O_NOCTTY.</summary>
    public const int O_NOCTTY = Libc.O_NOCTTY;

    /// <summary>open(2) with O_CLOEXEC always added; throws <see cref="ErrnoException"/>("open &lt;path&gt;").</summary>
    public static unsafe SafeFileHandle Open(string path, int flags, int mode = 0)
    {
        byte* native = NativeStrings.Single(path, out var owner);
        using (owner)
        {
            int fd;
            do
            {
                fd = Libc.open(native, flags | Libc.O_CLOEXEC, mode);
            }
            while (fd < 0 && Errno.Last == Errno.EINTR);
            if (fd < 0)
            {
                throw ErrnoException.FromLast($"open {path}");
            }
            FdLimit.Observe(fd);
            return new SafeFileHandle(fd, ownsHandle: true);
        }
    }

    /// <summary>Sets or clears O_NONBLOCK on the open file description.</summary>
    public static void SetNonBlocking(SafeHandle fd, bool on)
    {
        using var use = new FdUse(fd);
        int flags = Libc.fcntl(use.Fd, Libc.F_GETFL, 0);
        if (flags < 0)
        {
            throw ErrnoException.FromLast("fcntl F_GETFL");
        }
        int wanted = on ? flags | Libc.O_NONBLOCK : flags & ~Libc.O_NONBLOCK;
        if (wanted != flags && Libc.fcntl(use.Fd, Libc.F_SETFL, wanted) < 0)
        {
            throw ErrnoException.FromLast("fcntl F_SETFL");
        }
    }

    /// <summary>dup2(2) the handle onto <paramref name="toFd"/> of this process (the new fd is not owned by any handle).</summary>
    public static void Dup2(SafeHandle from, int toFd)
    {
        using var use = new FdUse(from);
        int rc;
        do
        {
            rc = Libc.dup2(use.Fd, toFd);
        }
        while (rc < 0 && Errno.Last is Errno.EINTR or Errno.EBUSY);
        if (rc < 0)
        {
            throw ErrnoException.FromLast($"dup2 {use.Fd} to {toFd}");
        }
    }

    /// <summary>fchown(2).</summary>
    public static void Fchown(SafeHandle fd, int uid, int gid)
    {
        using var use = new FdUse(fd);
        if (Libc.fchown(use.Fd, uid, gid) < 0)
        {
            throw ErrnoException.FromLast($"fchown {uid}:{gid}");
        }
    }

    /// <summary>True if the path names a FIFO (symlinks followed); false if it does not exist.</summary>
    public static unsafe bool IsFifo(string path)
    {
        byte* native = NativeStrings.Single(path, out var owner);
        using (owner)
        {
            int type = FileType(Libc.AT_FDCWD, native, 0, out int errno);
            if (type < 0)
            {
                if (errno is Errno.ENOENT or Errno.ENOTDIR)
                {
                    return false;
                }
                throw new ErrnoException(errno, $"statx {path}");
            }
            return type == Libc.S_IFIFO;
        }
    }

    /// <summary>True if the descriptor is a FIFO or pipe.</summary>
    public static bool IsFifo(SafeHandle fd) => FileType(fd) == Libc.S_IFIFO;

    /// <summary>True if the descriptor is a regular file.</summary>
    public static bool IsRegularFile(SafeHandle fd) => FileType(fd) == Libc.S_IFREG;

    /// <summary>The S_IFMT bits of an open descriptor.</summary>
    internal static unsafe int FileType(SafeHandle fd)
    {
        using var use = new FdUse(fd);
        byte empty = 0;
        int type = FileType(use.Fd, &empty, Libc.AT_EMPTY_PATH, out int errno);
        if (type < 0)
        {
            throw new ErrnoException(errno, "statx");
        }
        return type;
    }

    /// <summary>Owner uid and gid of an open descriptor.</summary>
    internal static unsafe (int Uid, int Gid) Owner(SafeHandle fd)
    {
        using var use = new FdUse(fd);
        byte empty = 0;
        byte* buffer = stackalloc byte[Libc.StatxSize];
        if (Libc.statx(use.Fd, &empty, Libc.AT_EMPTY_PATH, Libc.STATX_UID | Libc.STATX_GID, buffer) < 0)
        {
            throw ErrnoException.FromLast("statx");
        }
        return (*(int*)(buffer + Libc.StatxUidOffset), *(int*)(buffer + Libc.StatxGidOffset));
    }

    private static unsafe int FileType(int dirFd, byte* path, int flags, out int errno)
    {
        byte* buffer = stackalloc byte[Libc.StatxSize];
        if (Libc.statx(dirFd, path, flags, Libc.STATX_TYPE, buffer) < 0)
        {
            errno = Errno.Last;
            return -1;
        }
        errno = 0;
        return *(ushort*)(buffer + Libc.StatxModeOffset) & Libc.S_IFMT;
    }
}
