using System.Text;
using Shim.Core.Stdio;
using Shim.Os;
using Shim.Os.Terminals;

namespace Shim.Core.Tests.Stdio;

/// <summary>Terminal mode: the pty master comes over the console socket (as runc sends it) and is copied to and from the FIFOs.</summary>
public sealed class TerminalIoTests : IDisposable
{
    private readonly StdioTestFiles _files = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_console_is_copied_to_the_stdout_fifo_and_stdin_into_the_console()
    {
        string stdin = _files.Fifo("stdin"), stdout = _files.Fifo("stdout");
        using var io = ProcessIo.Open(TestStdio.Context, new StdioPaths(stdin, stdout, "", Terminal: true), 0, 0);
        Assert.NotNull(io.ConsoleSocketPath);
        Assert.True(File.Exists(io.ConsoleSocketPath));
        foreach (var handle in new[] { io.RuncSide.Stdin!, io.RuncSide.Stdout!, io.RuncSide.Stderr! })
        {
            Assert.Equal("/dev/null", new FileInfo($"/proc/self/fd/{handle.DangerousGetHandle()}").LinkTarget);
        }

        var (master, slave, _) = Terminal.OpenPty();
        await using var process = new FileStream(slave, FileAccess.ReadWrite, bufferSize: 0);
        var receiving = io.ReceiveConsoleAsync(Ct);
        using (master)
        {
            await Task.Run(() => ConsoleSocket.SendMaster(io.ConsoleSocketPath!, master), Ct);   // runc's side
        }
        await receiving.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        Assert.NotNull(io.Master);
        io.Start();

        io.Resize(100, 30);
        Assert.Equal(((ushort)100, (ushort)30), Terminal.GetSize(slave));

        await using var reader = StdioTestFiles.Client(stdout, FileAccess.Read);
        await process.WriteAsync("from the process"u8.ToArray(), Ct);
        var got = new byte[16];
        await reader.ReadExactlyAsync(got, Ct).AsTask().WaitAsync(TimeSpan.FromSeconds(30), Ct);
        Assert.Equal("from the process", Encoding.UTF8.GetString(got));

        await using (var client = StdioTestFiles.Client(stdin, FileAccess.Write))
        {
            await client.WriteAsync("typed\n"u8.ToArray(), Ct);   // a line: the pty is in canonical mode
        }
        var typed = new byte[6];
        await process.ReadExactlyAsync(typed, Ct).AsTask().WaitAsync(TimeSpan.FromSeconds(30), Ct);
        Assert.Equal("typed\n", Encoding.UTF8.GetString(typed));
    }

    [Fact]
    public void A_terminal_with_an_unknown_scheme_is_an_invalid_argument()
    {
        var ex = Assert.Throws<Shim.Core.Errors.ShimException>(() =>
            ProcessIo.Open(TestStdio.Context, new StdioPaths("", "tcp://host/x", "", Terminal: true), 0, 0));
        Assert.Equal(Shim.Core.Errors.ErrorKind.InvalidArgument, ex.Kind);
    }

    [Fact]
    public void Dispose_removes_the_console_socket_never_used()
    {
        var io = ProcessIo.Open(TestStdio.Context, new StdioPaths("", "", "", Terminal: true), 0, 0);
        string socket = io.ConsoleSocketPath!;
        Assert.True(File.Exists(socket));
        io.Resize(80, 24);   // no master yet: ignored

        io.Dispose();

        Assert.False(File.Exists(socket));
    }

    public void Dispose() => _files.Dispose();
}
