using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Shim.Os.Interop;

namespace Shim.Os;

/// <summary>Anonymous pipes.</summary>
public static class Pipes
{
    /// <summary>pipe2(O_CLOEXEC); both ends as SafeFileHandle.</summary>
    public static unsafe (SafeFileHandle Read, SafeFileHandle Write) Create()
    {
        int* fds = stackalloc int[2];
        if (Libc.pipe2(fds, Libc.O_CLOEXEC) < 0)
        {
            throw ErrnoException.FromLast("pipe2");
        }
        FdLimit.Observe(fds[1]);
        return (new SafeFileHandle(fds[0], ownsHandle: true), new SafeFileHandle(fds[1], ownsHandle: true));
    }

    /// <summary>F_SETPIPE_SZ; failure (e.g. above /proc/sys/fs/pipe-max-size) is ignored.</summary>
    public static void TrySetSize(SafeFileHandle pipe, int bytes)
    {
        using var use = new FdUse(pipe);
        _ = Libc.fcntl(use.Fd, Libc.F_SETPIPE_SZ, bytes);
    }

    /// <summary>Bytes written to the pipe or FIFO and not read yet (FIONREAD); 0 once the handle is closed or for other kinds of fd.</summary>
    public static unsafe int Unread(SafeHandle pipe)
    {
        try
        {
            using var use = new FdUse(pipe);
            int count = 0;
            return Libc.ioctl(use.Fd, Libc.FIONREAD, &count) < 0 ? 0 : count;
        }
        catch (ObjectDisposedException)
        {
            return 0;
        }
    }

    /// <summary>F_GETPIPE_SZ, or -1 if the descriptor is not a pipe.</summary>
    public static int GetSize(SafeFileHandle pipe)
    {
        using var use = new FdUse(pipe);
        return Libc.fcntl(use.Fd, Libc.F_GETPIPE_SZ, 0);
    }
}
