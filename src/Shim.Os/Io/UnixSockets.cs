using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;
using Shim.Os.Interop;

namespace Shim.Os.Io;

/// <summary>sockaddr_un and socket creation for <see cref="LoopSocket"/> and <see cref="LoopListener"/>.</summary>
internal static class UnixSockets
{
    private const int MaxPath = 107;   // sun_path[108] keeps a terminating NUL

    /// <summary>A new AF_UNIX stream socket, non-blocking and close-on-exec.</summary>
    internal static SafeFileHandle Create()
    {
        int fd = Libc.socket(Libc.AF_UNIX, Libc.SOCK_STREAM | Libc.SOCK_NONBLOCK | Libc.SOCK_CLOEXEC, 0);
        if (fd < 0)
        {
            throw LoopSocket.Failure(Errno.Last, "socket AF_UNIX");
        }
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>
    /// A new stream socket bound at <paramref name="path"/> and listening; null with the failing
    /// call and its errno otherwise (no exception: EADDRINUSE is an answer for the start action).
    /// </summary>
    internal static unsafe SafeFileHandle? TryBindListen(string path, int backlog, out int errno, out string failedCall)
    {
        var handle = Create();
        try
        {
            byte* address = stackalloc byte[Libc.SockaddrUnSize];
            uint length = Address(path, address);
            int fd = (int)handle.DangerousGetHandle();
            failedCall = Libc.bind(fd, address, length) < 0 ? "bind"
                : Libc.listen(fd, backlog) < 0 ? "listen"
                : "";
            if (failedCall.Length == 0)
            {
                errno = 0;
                return handle;
            }
            errno = Errno.Last;
            handle.Dispose();
            return null;
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>Fills <paramref name="address"/> (<see cref="Libc.SockaddrUnSize"/> bytes) and returns the length to pass.</summary>
    internal static unsafe uint Address(string path, byte* address)
    {
        var span = new Span<byte>(address, Libc.SockaddrUnSize);
        span.Clear();
        *(ushort*)address = Libc.AF_UNIX;
        int length;
        try
        {
            length = Encoding.UTF8.GetBytes(path, span.Slice(Libc.SunPathOffset, MaxPath));
        }
        catch (ArgumentException)
        {
            throw new IOException($"unix socket path too long ({Encoding.UTF8.GetByteCount(path)} > {MaxPath} bytes): {path}");
        }
        if (length == 0)
        {
            throw new IOException("empty unix socket path");
        }
        return (uint)(Libc.SunPathOffset + length + 1);
    }

    /// <summary>getsockname(2) path of a bound unix socket; null when it has none (unnamed or abstract).</summary>
    internal static unsafe string? LocalPath(SafeHandle handle)
    {
        byte* address = stackalloc byte[Libc.SockaddrUnSize];
        uint length = Libc.SockaddrUnSize;
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            if (Libc.getsockname((int)handle.DangerousGetHandle(), address, &length) < 0)
            {
                throw LoopSocket.Failure(Errno.Last, "getsockname");
            }
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
        var path = new ReadOnlySpan<byte>(address + Libc.SunPathOffset, Math.Max(0, (int)length - Libc.SunPathOffset));
        int nul = path.IndexOf((byte)0);
        if (nul == 0 || path.IsEmpty)
        {
            return null;
        }
        return Encoding.UTF8.GetString(nul < 0 ? path : path[..nul]);
    }
}
