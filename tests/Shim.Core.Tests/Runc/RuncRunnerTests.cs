using System.Globalization;
using System.Security.Cryptography;
using Shim.Os;
using Shim.Os.Io;
using Shim.Runc;

namespace Shim.Core.Tests.Runc;

/// <summary>
/// The runner's plumbing with small fake-runc scripts: stdout captured, stderr trimmed, input fed,
/// all on the I/O loop, so a runc call that runs for minutes holds no thread.
/// </summary>
public sealed class RuncRunnerTests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private readonly string _dir = Directory.CreateTempSubdirectory("rcs-runner-").FullName;
    private readonly IoLoop _loop = new("runner-test-loop");
    private readonly RuncRunner _runner;

    public RuncRunnerTests()
    {
        Reaper.Instance.Start();
        _runner = new RuncRunner(Reaper.Instance, _loop);
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose()
    {
        _loop.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task Stdout_is_captured_whole_and_stderr_trimmed()
    {
        string runc = Script("runc", "printf '[1,2,3]'; printf '  a warning \\n\\n' >&2; exit 4");

        var result = await _runner.RunAsync([runc, "ps"], RuncIo.Captured, Ct).WaitAsync(Bound, Ct);

        Assert.Equal(4, result.ExitCode);
        Assert.Equal("[1,2,3]"u8.ToArray(), result.Stdout);
        Assert.Equal("a warning", result.Stderr);
        Assert.False(result.Truncated);
    }

    [Fact]
    public async Task Input_is_written_to_stdin_and_closed()
    {
        string copy = Path.Combine(_dir, "stdin");
        string runc = Script("runc", $"cat > '{copy}'");
        var input = RandomNumberGenerator.GetBytes(300 * 1024);   // more than a pipe holds

        var result = await _runner.RunAsync([runc, "update"], new RuncIo { Input = input }, Ct).WaitAsync(Bound, Ct);

        Assert.Equal(0, result.ExitCode);
        Assert.Equal(input, await File.ReadAllBytesAsync(copy, Ct));
    }

    [Fact]
    public async Task A_runc_that_exits_without_reading_its_input_reports_its_own_exit()
    {
        string runc = Script("runc", "echo 'bad flag' >&2; exit 2");

        var result = await _runner.RunAsync([runc, "update"], new RuncIo { Input = new byte[1024 * 1024] }, Ct).WaitAsync(Bound, Ct);

        Assert.Equal(2, result.ExitCode);
        Assert.Equal("bad flag", result.Stderr);
    }

    [Fact]
    public async Task Output_over_the_limit_fails_the_call_instead_of_being_cut_silently()
    {
        string runc = Script("runc", $"head -c {RuncRunner.OutputLimit + 1} /dev/zero");
        var client = new RuncClient(new RuncConfig(runc, _dir, Path.Combine(_dir, "log.json")), _runner);

        var ex = await Assert.ThrowsAsync<RuncException>(() => client.PsAsync("c1", Ct).WaitAsync(Bound, Ct));

        Assert.Contains("runc ps", ex.Message, StringComparison.Ordinal);
        Assert.Contains("cut off", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Output_of_exactly_the_limit_is_whole()
    {
        string runc = Script("runc", $"head -c {RuncRunner.OutputLimit} /dev/zero");

        var result = await _runner.RunAsync([runc, "features"], RuncIo.Captured, Ct).WaitAsync(Bound, Ct);

        Assert.Equal(0, result.ExitCode);
        Assert.False(result.Truncated);
        Assert.Equal(RuncRunner.OutputLimit, result.Stdout.Length);
    }

    [Fact]
    public async Task A_grandchild_that_keeps_stdout_open_holds_the_call_only_until_the_caller_cancels()
    {
        // runc's output is read to its end, as containerd's shim (go-runc) does; only cancellation ends a pipe a leftover child keeps open
        // the script hands the grandchild's pid through a FIFO: reading it is the event that it is running
        string pidFifo = Path.Combine(_dir, "grandchild.pid");
        Fifos.Create(pidFifo);
        string runc = Script("runc", $"sleep 300 & echo $! > '{pidFifo}'; exit 0");
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var call = _runner.RunAsync([runc, "start"], RuncIo.Captured, cancel.Token);
        int pid = 0;
        try
        {
            pid = int.Parse((await Task.Run(() => File.ReadAllText(pidFifo), Ct).WaitAsync(Bound, Ct)).Trim(), NumberStyles.None, CultureInfo.InvariantCulture);
            Assert.False(call.IsCompleted);

            await cancel.CancelAsync();

            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call.WaitAsync(Bound, Ct));
        }
        finally
        {
            if (pid > 0)
            {
                Signals.Kill(pid, Signals.SIGKILL);
            }
        }
    }

    [Fact]
    public async Task Twenty_runc_calls_held_at_once_leave_the_thread_pool_free()
    {
        // each call says it started by a line into one FIFO, and waits for a line from another:
        // the test holds both open read-write, so no open waits and neither side polls
        string startedFifo = Path.Combine(_dir, "started"), releaseFifo = Path.Combine(_dir, "release");
        Fifos.Create(startedFifo);
        Fifos.Create(releaseFifo);
        await using var started = new FileStream(startedFifo, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, bufferSize: 0);
        await using var release = new FileStream(releaseFifo, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, bufferSize: 0);
        string runc = Script("runc", $"echo $$ > '{startedFifo}'; read line < '{releaseFifo}'; echo held");
        int threadsBefore = ThreadCount();
        // started from a thread of their own, so what the runner queues goes to the pool's global queue
        var calls = await Task.Factory.StartNew(
            () => Enumerable.Range(0, 20).Select(_ => _runner.RunAsync([runc, "start"], RuncIo.Captured, Ct)).ToList(),
            Ct, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        try
        {
            await Task.Run(() => ReadLines(started, calls.Count), Ct).WaitAsync(Bound, Ct);

            // with a blocking read per stream these 20 calls would hold 40 pool threads: either the pool
            // grew by that much, or this item queues behind them
            // (fairly queued: behind what the runner queued, as the ttrpc server queues a call)
            int running = await Task.Factory.StartNew(() => calls.Count(c => !c.IsCompleted), Ct, TaskCreationOptions.PreferFairness, TaskScheduler.Default)
                .WaitAsync(TimeSpan.FromSeconds(10), Ct);
            Assert.Equal(calls.Count, running);
            int grown = ThreadCount() - threadsBefore;
            Assert.True(grown < calls.Count, $"the process grew by {grown} threads while {calls.Count} runc calls were held");
        }
        finally
        {
            // a line each (sh's read takes one line of a pipe, byte by byte)
            await release.WriteAsync(System.Text.Encoding.ASCII.GetBytes(new string('\n', calls.Count)), Ct);
        }
        var results = await Task.WhenAll(calls).WaitAsync(Bound, Ct);
        Assert.All(results, r => Assert.Equal("held\n"u8.ToArray(), r.Stdout));
    }

    /// <summary>Threads of the test process (other tests running meanwhile may add a few: the bound above is wide).</summary>
    private static int ThreadCount() => Directory.GetDirectories("/proc/self/task").Length;

    private string Script(string name, string body)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllText(path, "#!/bin/sh\n" + body + "\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    /// <summary>Reads <paramref name="count"/> lines from a FIFO (blocking: run it off the test's thread).</summary>
    private static void ReadLines(FileStream fifo, int count)
    {
        var one = new byte[1];
        for (int lines = 0; lines < count;)
        {
            Assert.Equal(1, fifo.Read(one, 0, 1));
            lines += one[0] == '\n' ? 1 : 0;
        }
    }
}
