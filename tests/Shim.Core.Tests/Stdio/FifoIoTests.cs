using Shim.Core.Errors;
using System.Security.Cryptography;
using System.Text;
using Shim.Core.Stdio;
using Shim.Os;
using Shim.Os.Terminals;

namespace Shim.Core.Tests.Stdio;

/// <summary>Pipe mode: pipes for runc, copies to and from containerd's FIFOs, and the exit's wait for unread output.</summary>
public sealed class FifoIoTests : IDisposable
{
    private static readonly TimeSpan Ms = TimeSpan.FromMilliseconds(1);
    private readonly StdioTestFiles _files = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task What_the_process_writes_reaches_the_stdout_and_stderr_fifos()
    {
        string stdout = _files.Fifo("stdout"), stderr = _files.Fifo("stderr");
        using var io = ProcessIo.Open(TestStdio.Context, new StdioPaths("", stdout, stderr, Terminal: false), 0, 0);
        var outData = RandomNumberGenerator.GetBytes(300 * 1024);   // more than a pipe and a FIFO hold
        var errData = Encoding.UTF8.GetBytes("an error\n");
        var processOut = StdioTestFiles.ProcessEnd(io.RuncSide.Stdout!, FileAccess.Write);
        var processErr = StdioTestFiles.ProcessEnd(io.RuncSide.Stderr!, FileAccess.Write);
        io.Start();
        await using var outReader = StdioTestFiles.Client(stdout, FileAccess.Read);
        await using var errReader = StdioTestFiles.Client(stderr, FileAccess.Read);

        var readingOut = StdioTestFiles.ReadToEndAsync(outReader);
        var readingErr = StdioTestFiles.ReadToEndAsync(errReader);
        await using (processOut)
        {
            await processOut.WriteAsync(outData, Ct);
        }
        await using (processErr)
        {
            await processErr.WriteAsync(errData, Ct);
        }

        byte[] gotOut = await readingOut;
        Assert.True(outData.AsSpan().SequenceEqual(gotOut), "stdout differs from what the process wrote");
        Assert.Equal(errData, await readingErr);
        Assert.True(await io.WaitOutputAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Stdin_from_the_fifo_reaches_the_process_which_sees_eof_once_both_ends_close()
    {
        string stdin = _files.Fifo("stdin");
        using var io = ProcessIo.Open(TestStdio.Context, new StdioPaths(stdin, "", "", Terminal: false), 0, 0);
        await using var process = StdioTestFiles.ProcessEnd(io.RuncSide.Stdin!, FileAccess.Read);
        io.Start();
        var reading = StdioTestFiles.ReadToEndAsync(process);

        await using (var client = StdioTestFiles.Client(stdin, FileAccess.Write))
        {
            await client.WriteAsync("hello\n"u8.ToArray(), Ct);
        }
        io.CloseStdin();

        Assert.Equal("hello\n", Encoding.UTF8.GetString(await reading));
    }

    [Fact]
    public async Task A_stdout_path_that_is_not_a_fifo_is_appended_to_as_a_file()
    {
        string log = Path.Combine(_files.Dir, "out.log");
        await File.WriteAllTextAsync(log, "before\n", Ct);
        using var io = ProcessIo.Open(TestStdio.Context, new StdioPaths("", log, "", Terminal: false), 0, 0);
        await using (var process = StdioTestFiles.ProcessEnd(io.RuncSide.Stdout!, FileAccess.Write))
        {
            io.Start();
            await process.WriteAsync("after\n"u8.ToArray(), Ct);
        }

        Assert.True(await io.WaitOutputAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal("before\nafter\n", await File.ReadAllTextAsync(log, Ct));
        Assert.False(io.HoldsUnreadOutput());
    }

    [Theory]
    [InlineData("out.log")]
    [InlineData("missing-dir/out.log")]
    public void A_stdout_path_that_does_not_exist_is_an_invalid_argument_and_nothing_is_created(string name)
    {
        // containerd's shim appends to an existing file and creates none (only file:// URIs create)
        string log = Path.Combine(_files.Dir, name);

        var ex = Assert.Throws<ShimException>(() => ProcessIo.Open(TestStdio.Context, new StdioPaths("", log, "", Terminal: false), 0, 0));

        Assert.Equal(ErrorKind.InvalidArgument, ex.Kind);
        Assert.Contains($"opening stdout {log} failed", ex.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(log));
        Assert.False(Directory.Exists(Path.Combine(_files.Dir, "missing-dir")));
    }

    [Theory]
    [InlineData("/etc/hostname")]
    [InlineData("/dev/null")]
    [InlineData("dir")]
    public void A_stdin_that_is_not_a_fifo_is_an_invalid_argument(string path)
    {
        // containerd's shim: "is not fifo"; ours read the host's file into the process
        if (path == "dir")
        {
            path = _files.Dir;
        }

        var ex = Assert.Throws<ShimException>(() => ProcessIo.Open(TestStdio.Context, new StdioPaths(path, "", "", Terminal: false), 0, 0));

        Assert.Equal(ErrorKind.InvalidArgument, ex.Kind);
        Assert.Equal($"opening stdin {path} failed: it is not a FIFO", ex.Message);
    }

    [Fact]
    public async Task Unread_output_holds_the_exit_for_the_idle_limit_with_a_few_dozen_wake_ups()
    {
        var clock = new ManualClock();
        string stdout = _files.Fifo("stdout");
        using var io = ProcessIo.Open(TestStdio.Context with { Time = clock }, new StdioPaths("", stdout, "", Terminal: false), 0, 0);
        await using var process = StdioTestFiles.ProcessEnd(io.RuncSide.Stdout!, FileAccess.Write);   // alive, writes nothing more
        io.Start();
        await using (var writer = StdioTestFiles.Client(stdout, FileAccess.Write))
        {
            await writer.WriteAsync(new byte[1000], Ct);   // output already in the FIFO, nobody reads it
        }
        Assert.True(io.HoldsUnreadOutput());

        var waiting = io.WaitOutputReadAsync(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(3));
        clock.Advance(999 * Ms);
        Assert.False(waiting.IsCompleted);
        clock.Advance(Ms);

        Assert.True(waiting.IsCompletedSuccessfully);
        Assert.True(io.HoldsUnreadOutput());   // still there: the exit is reported anyway
        // 1, 2, 4 ... 32 ms, then every 32 ms: about 36 wake-ups in a second (a 2 ms poll made 500)
        Assert.InRange(clock.Fired, 30, 40);
        Assert.Equal(0, clock.Armed);
    }

    [Fact]
    public async Task Output_that_keeps_changing_holds_the_exit_no_longer_than_the_overall_limit()
    {
        var clock = new ManualClock();
        string stdout = _files.Fifo("stdout");
        using var io = ProcessIo.Open(TestStdio.Context with { Time = clock }, new StdioPaths("", stdout, "", Terminal: false), 0, 0);
        await using var process = StdioTestFiles.ProcessEnd(io.RuncSide.Stdout!, FileAccess.Write);
        io.Start();
        await using var writer = StdioTestFiles.Client(stdout, FileAccess.Write);   // something outside keeps writing
        await writer.WriteAsync(new byte[1], Ct);

        var waiting = io.WaitOutputReadAsync(TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(500));
        for (int i = 0; i < 49; i++)
        {
            await writer.WriteAsync(new byte[1], Ct);
            clock.Advance(10 * Ms);
        }
        Assert.False(waiting.IsCompleted);   // 490 ms, five times the idle limit, but never idle
        await writer.WriteAsync(new byte[1], Ct);
        clock.Advance(10 * Ms);

        Assert.True(waiting.IsCompletedSuccessfully);
    }

    [Fact]
    public async Task Once_the_client_read_everything_the_exit_goes_at_the_next_recheck()
    {
        var clock = new ManualClock();
        string stdout = _files.Fifo("stdout");
        using var io = ProcessIo.Open(TestStdio.Context with { Time = clock }, new StdioPaths("", stdout, "", Terminal: false), 0, 0);
        await using var process = StdioTestFiles.ProcessEnd(io.RuncSide.Stdout!, FileAccess.Write);
        io.Start();
        await using var reader = StdioTestFiles.Client(stdout, FileAccess.Read);
        await using (var writer = StdioTestFiles.Client(stdout, FileAccess.Write))
        {
            await writer.WriteAsync(new byte[1000], Ct);
        }
        var waiting = io.WaitOutputReadAsync(TimeSpan.FromSeconds(20), TimeSpan.FromSeconds(60));
        clock.Advance(100 * Ms);
        Assert.False(waiting.IsCompleted);

        var buffer = new byte[1000];
        await reader.ReadExactlyAsync(buffer, Ct);
        Assert.False(io.HoldsUnreadOutput());
        clock.Advance(32 * Ms);   // the longest re-check

        Assert.True(waiting.IsCompletedSuccessfully);
    }

    [Fact]
    public void Nothing_asked_for_gives_runc_dev_null_and_holds_nothing()
    {
        using var io = ProcessIo.Open(TestStdio.Context, new StdioPaths("", "", "", Terminal: false), 0, 0);
        foreach (var handle in new[] { io.RuncSide.Stdin!, io.RuncSide.Stdout!, io.RuncSide.Stderr! })
        {
            Assert.Equal("/dev/null", new FileInfo($"/proc/self/fd/{handle.DangerousGetHandle()}").LinkTarget);
        }
        io.Start();
        Assert.False(io.HoldsUnreadOutput());
        Assert.True(io.WaitOutputReadAsync(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1)).IsCompletedSuccessfully);
        Assert.True(io.WaitOutputAsync(TimeSpan.FromSeconds(1)).IsCompletedSuccessfully);
    }

    public void Dispose() => _files.Dispose();
}
