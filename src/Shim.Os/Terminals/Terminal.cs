using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Shim.Os.Interop;

namespace Shim.Os.Terminals;

/// <summary>Window size of a pseudo-terminal, and opening pty pairs (tests; runc makes the real ones).</summary>
public static class Terminal
{
    /// <summary>ioctl TIOCSWINSZ: sets ws_col = width and ws_row = height (the slave's foreground process group gets SIGWINCH).</summary>
    public static unsafe void Resize(SafeHandle master, ushort width, ushort height)
    {
        using var use = new FdUse(master);
        var size = new WinSize { Rows = height, Columns = width };
        if (Libc.ioctl(use.Fd, Libc.TIOCSWINSZ, &size) < 0)
        {
            throw ErrnoException.FromLast($"ioctl TIOCSWINSZ {width}x{height}");
        }
    }

    /// <summary>ioctl TIOCGWINSZ: the current (columns, rows).</summary>
    public static unsafe (ushort Width, ushort Height) GetSize(SafeHandle master)
    {
        using var use = new FdUse(master);
        WinSize size = default;
        if (Libc.ioctl(use.Fd, Libc.TIOCGWINSZ, &size) < 0)
        {
            throw ErrnoException.FromLast("ioctl TIOCGWINSZ");
        }
        return (size.Columns, size.Rows);
    }

    /// <summary>isatty(3) on a raw descriptor.</summary>
    internal static bool IsTerminal(int fd) => Libc.isatty(fd) == 1;

    /// <summary>"/dev/pts/N" for a pty master (TIOCGPTN), or null if the descriptor is not one.</summary>
    internal static unsafe string? TryGetSlaveName(SafeHandle master)
    {
        using var use = new FdUse(master);
        uint number;
        return Libc.ioctl(use.Fd, Libc.TIOCGPTN, &number) < 0 ? null : $"/dev/pts/{number}";
    }

    /// <summary>Opens a new pty pair through /dev/ptmx (both ends O_CLOEXEC|O_NOCTTY); the slave is not anyone's controlling terminal.</summary>
    internal static unsafe (SafeFileHandle Master, SafeFileHandle Slave, string SlaveName) OpenPty()
    {
        var master = Fds.Open("/dev/ptmx", Libc.O_RDWR | Libc.O_NOCTTY);
        try
        {
            using (var use = new FdUse(master))
            {
                int unlock = 0;
                if (Libc.ioctl(use.Fd, Libc.TIOCSPTLCK, &unlock) < 0)
                {
                    throw ErrnoException.FromLast("ioctl TIOCSPTLCK");
                }
            }
            string name = TryGetSlaveName(master) ?? throw ErrnoException.FromLast("ioctl TIOCGPTN");
            var slave = Fds.Open(name, Libc.O_RDWR | Libc.O_NOCTTY);
            return (master, slave, name);
        }
        catch
        {
            master.Dispose();
            throw;
        }
    }
}
