using Microsoft.Win32.SafeHandles;
using Shim.Os.Interop;

namespace Shim.Os.Io;

/// <summary>
/// Plain listening sockets for short-lived processes (the `start` action): bind, listen and probe
/// a unix socket path without the .NET socket stack, which starts an epoll thread and probes
/// IPv4/IPv6 on first use.
/// </summary>
public static class UnixSocketFiles
{
    /// <summary>Binds a new stream socket at <paramref name="path"/> and listens; null when the path is taken (EADDRINUSE).</summary>
    public static SafeFileHandle? TryListen(string path, int backlog = 128)
    {
        var handle = UnixSockets.TryBindListen(path, backlog, out int errno, out string failedCall);
        return handle is not null || (failedCall == "bind" && errno == Errno.EADDRINUSE) ? handle : throw LoopSocket.Failure(errno, $"{failedCall} {path}");
    }

    /// <summary>
    /// True when a process listens at <paramref name="path"/>: a connect is queued at once (or
    /// refused with EAGAIN, a full backlog of a live listener); a stale file answers ECONNREFUSED.
    /// </summary>
    public static unsafe bool IsServing(string path)
    {
        using var handle = UnixSockets.Create();
        byte* address = stackalloc byte[Libc.SockaddrUnSize];
        uint length = UnixSockets.Address(path, address);
        if (Libc.connect((int)handle.DangerousGetHandle(), address, length) == 0)
        {
            return true;
        }
        return Errno.Last == Errno.EAGAIN;
    }
}
