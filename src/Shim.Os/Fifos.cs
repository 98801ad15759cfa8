using System.Runtime.InteropServices;
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
    /// <exception cref="InvalidDataException">The path names something other than a FIFO (containerd's shim refuses it too: "is not fifo").</exception>
    public static (SafeFileHandle Reader, SafeFileHandle Keeper) OpenInput(string path)
    {
        // Read end first: a non-blocking O_RDONLY open never waits, and once it exists the
        // non-blocking O_WRONLY open of the keeper cannot fail with ENXIO. The keeper is opened
        // through the reader's descriptor, so both are the same inode whatever the path names now.
        var reader = Fds.Open(path, Libc.O_RDONLY | Libc.O_NONBLOCK | Libc.O_NOCTTY);
        try
        {
            if (!Fds.IsFifo(reader))
            {
                throw new InvalidDataException($"{path} is not a FIFO");
            }
            var keeper = Reopen(reader, Libc.O_WRONLY | Libc.O_NONBLOCK | Libc.O_NOCTTY);
            return (reader, keeper);
        }
        catch
        {
            reader.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Opens what an output path names, once, without creating it: a FIFO as <see cref="OpenOutput"/>
    /// does, anything else (a file, /dev/null) for appending, as containerd's shim does. The kind is
    /// read from the inode opened, so a FIFO swapped for a file in between is never written from offset 0.
    /// </summary>
    public static (SafeFileHandle Handle, bool IsFifo) OpenOutputPath(string path)
    {
        using var located = Fds.Open(path, Libc.O_PATH);
        bool fifo = Fds.IsFifo(located);
        return (Reopen(located, fifo ? Libc.O_RDWR | Libc.O_NONBLOCK | Libc.O_NOCTTY : Libc.O_WRONLY | Libc.O_APPEND | Libc.O_NOCTTY), fifo);
    }

    /// <summary>A read-only observer (see <see cref="OpenObserver(string)"/>) of the FIFO <paramref name="fifo"/> is open on.</summary>
    public static SafeFileHandle OpenObserver(SafeHandle fifo) =>
        Reopen(fifo, Libc.O_RDONLY | Libc.O_NONBLOCK | Libc.O_NOCTTY);

    /// <summary>Opens the inode <paramref name="open"/> refers to again, with other flags (through /proc/self/fd).</summary>
    private static SafeFileHandle Reopen(SafeHandle open, int flags)
    {
        using var use = new FdUse(open);
        return Fds.Open($"/proc/self/fd/{use.Fd}", flags);
    }
}
