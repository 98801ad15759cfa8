using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Shim.Os.Interop;

namespace Shim.Os.Notify;

/// <summary>eventfd(2) counters.</summary>
public static class EventFd
{
    /// <summary>eventfd2 with EFD_CLOEXEC | EFD_NONBLOCK.</summary>
    public static SafeFileHandle Create(uint initial = 0)
    {
        int fd = Libc.eventfd(initial, Libc.EFD_CLOEXEC | Libc.EFD_NONBLOCK);
        if (fd < 0)
        {
            throw ErrnoException.FromLast("eventfd");
        }
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>Reads (and so resets) the counter; false when it is zero (EAGAIN on the non-blocking fd).</summary>
    public static bool TryRead(SafeHandle eventFd, out ulong value)
    {
        Span<byte> buffer = stackalloc byte[sizeof(ulong)];
        int n = RawIo.Read(eventFd, buffer);
        if (n == -Errno.EAGAIN)
        {
            value = 0;
            return false;
        }
        if (n < 0)
        {
            throw new ErrnoException(-n, "read eventfd");
        }
        if (n != sizeof(ulong))
        {
            throw new ErrnoException(Errno.EIO, $"read eventfd: {n} bytes");
        }
        value = MemoryMarshal.Read<ulong>(buffer);   // host byte order
        return true;
    }

    /// <summary>Adds <paramref name="value"/> to the counter.</summary>
    public static void Write(SafeHandle eventFd, ulong value)
    {
        Span<byte> buffer = stackalloc byte[sizeof(ulong)];
        MemoryMarshal.Write(buffer, in value);
        int n = RawIo.Write(eventFd, buffer);
        if (n < 0)
        {
            throw new ErrnoException(-n, "write eventfd");
        }
    }
}
