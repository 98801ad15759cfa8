using System.Runtime.InteropServices;
using Shim.Os.Interop;

namespace Shim.Os;

/// <summary>Single read(2)/write(2) calls on a handle, errors returned as negative errno (no exceptions).</summary>
internal static class RawIo
{
    /// <summary>One read; the byte count (0 at EOF) or -errno.</summary>
    internal static unsafe int Read(SafeHandle handle, Span<byte> buffer)
    {
        using var use = new FdUse(handle);
        fixed (byte* p = buffer)
        {
            nint n;
            do
            {
                n = Libc.read(use.Fd, p, (nuint)buffer.Length);
            }
            while (n < 0 && Errno.Last == Errno.EINTR);
            return n >= 0 ? (int)n : -Errno.Last;
        }
    }

    /// <summary>Writes everything, retrying partial writes; the byte count or -errno of the first failure.</summary>
    internal static unsafe int Write(SafeHandle handle, ReadOnlySpan<byte> data)
    {
        using var use = new FdUse(handle);
        fixed (byte* p = data)
        {
            int done = 0;
            while (done < data.Length)
            {
                nint n = Libc.write(use.Fd, p + done, (nuint)(data.Length - done));
                if (n < 0)
                {
                    if (Errno.Last == Errno.EINTR)
                    {
                        continue;
                    }
                    return -Errno.Last;
                }
                done += (int)n;
            }
            return done;
        }
    }
}
