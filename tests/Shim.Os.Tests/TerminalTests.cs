using System.Runtime.InteropServices;
using Shim.Os.Interop;
using Shim.Os.Tests.Support;
using Shim.Os.Terminals;

namespace Shim.Os.Tests;

public sealed class TerminalTests
{
    private const int ENOTTY = 25;

    [Fact]
    public void Console_struct_layouts_match_the_lp64_abi()
    {
        Assert.Equal(56, Marshal.SizeOf<MsgHdr>());
        Assert.Equal(16, (int)Marshal.OffsetOf<MsgHdr>(nameof(MsgHdr.Iov)));
        Assert.Equal(32, (int)Marshal.OffsetOf<MsgHdr>(nameof(MsgHdr.Control)));
        Assert.Equal(48, (int)Marshal.OffsetOf<MsgHdr>(nameof(MsgHdr.Flags)));
        Assert.Equal(16, Marshal.SizeOf<IoVec>());
        Assert.Equal(8, Marshal.SizeOf<WinSize>());
        Assert.Equal(24, Libc.CmsgSpace(sizeof(int)));
        Assert.Equal(20, Libc.CmsgLen(sizeof(int)));
    }

    [Fact]
    public void Resize_then_get_size_round_trips_width_and_height()
    {
        var (master, slave, _) = Terminal.OpenPty();
        using (master)
        using (slave)
        {
            Terminal.Resize(master, 132, 43);
            Assert.Equal(((ushort)132, (ushort)43), Terminal.GetSize(master));
            Assert.Equal(((ushort)132, (ushort)43), Terminal.GetSize(slave));   // one window size per pty

            Terminal.Resize(master, 80, 24);
            Assert.Equal(((ushort)80, (ushort)24), Terminal.GetSize(master));
        }
    }

    [Fact]
    public void A_new_pty_is_a_terminal_named_under_dev_pts()
    {
        var (master, slave, name) = Terminal.OpenPty();
        using (master)
        using (slave)
        {
            Assert.StartsWith("/dev/pts/", name, StringComparison.Ordinal);
            Assert.Equal(name, Terminal.TryGetSlaveName(master));
            Assert.True(Terminal.IsTerminal((int)master.DangerousGetHandle()));
            Assert.True(Terminal.IsTerminal((int)slave.DangerousGetHandle()));
        }
    }

    [Fact]
    public void Resizing_something_that_is_not_a_terminal_fails_with_enotty()
    {
        var (read, write) = Pipes.Create();
        using (read)
        using (write)
        {
            var ex = Assert.Throws<ErrnoException>(() => Terminal.Resize(read, 80, 24));
            Assert.Equal(ENOTTY, ex.Errno);
            Assert.Equal(ENOTTY, Assert.Throws<ErrnoException>(() => Terminal.GetSize(write)).Errno);
            Assert.Null(Terminal.TryGetSlaveName(read));
        }
    }
}
