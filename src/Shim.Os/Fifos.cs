using Microsoft.Win32.SafeHandles;
using Shim.Os.Interop;

namespace Shim.Os;

/// <summary>Opening the stdio FIFOs containerd hands to the shim.</summary>
public static class Fifos
{
    /// <summary>mkfifo(3); an existing FIFO at the path is not an error.</summary>
    public static unsafe void Create(string path, int mode = 0x180 /* 0600 */)
    {
        byte* native = NativeStrings.Single(path, out var owner);
        using (owner)
        {
            if (Libc.mkfifo(native, mode) < 0)
            {
                int errno = Errno.Last;
                if (errno == Errno.EEXIST && Fds.IsFifo(path))
                {
                    return;
                }
                throw new ErrnoException(errno, $"mkfifo {path}");
            }
        }
    }

    /// <summary>Output side for an existing FIFO path: opened O_RDWR|O_NONBLOCK so the open never waits for a reader and writes never hit EPIPE when the reader detaches (data waits in the pipe until a reader attaches).</summary>
    public static SafeFileHandle OpenOutput(string path) =>
        Fds.Open(path, Libc.O_RDWR | Libc.O_NONBLOCK | Libc.O_NOCTTY);

    /// <summary>
    /// A read-only handle on an output FIFO that is never read: it only lets the shim see (with
    /// <see cref="Pipes.Unread"/>) whether the client has read everything. Being no writer, it
    /// does not keep the client from seeing EOF.
    /// </summary>
    public static SafeFileHandle OpenObserver(string path) =>
        Fds.Open(path, Libc.O_RDONLY | Libc.O_NONBLOCK | Libc.O_NOCTTY);

    /// <summary>Input side (container stdin) for an existing FIFO: opens the read end (non-blocking) and a write end "keeper" that the shim holds until CloseIO, so the reader does not see EOF before the client closes. Returns both.</summary>
    public static (SafeFileHandle Reader, SafeFileHandle Keeper) OpenInput(string path)
    {
        // Read end first: a non-blocking O_RDONLY open never waits, and once it exists the
        // non-blocking O_WRONLY open of the keeper cannot fail with ENXIO.
        var reader = Fds.Open(path, Libc.O_RDONLY | Libc.O_NONBLOCK | Libc.O_NOCTTY);
        try
        {
            var keeper = Fds.Open(path, Libc.O_WRONLY | Libc.O_NONBLOCK | Libc.O_NOCTTY);
            return (reader, keeper);
        }
        catch
        {
            reader.Dispose();
            throw;
        }
    }
}
