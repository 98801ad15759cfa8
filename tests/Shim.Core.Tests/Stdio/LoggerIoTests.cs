using System.Text;
using Shim.Core.Stdio;
using Shim.Os;
using Shim.Os.Terminals;

namespace Shim.Core.Tests.Stdio;

/// <summary>binary:// mode: runc writes into a logging binary's pipes (fd 3 and 4) once it signalled readiness on fd 5.</summary>
public sealed class LoggerIoTests : IDisposable
{
    private readonly StdioTestFiles _files = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public LoggerIoTests() => Reaper.Instance.Start();

    [Fact]
    public async Task The_logger_gets_stdout_on_fd_3_and_stderr_on_fd_4_with_its_arguments_and_environment()
    {
        string script = Logger("""
            cat <&3 > "$DIR/out" &
            cat <&4 > "$DIR/err" &
            echo "$CONTAINER_NAMESPACE/$CONTAINER_ID $1 $2" > "$DIR/args"
            printf x >&5
            exec 5>&-
            wait
            touch "$DIR/done"
            """);
        string uri = $"binary://{script}?flag=value";
        using var io = await ProcessIo.OpenAsync(TestStdio.Context, new StdioPaths("", uri, uri, Terminal: false), 0, 0, "c1", "ns1", Ct);
        var stdout = StdioTestFiles.ProcessEnd(io.RuncSide.Stdout!, FileAccess.Write);
        var stderr = StdioTestFiles.ProcessEnd(io.RuncSide.Stderr!, FileAccess.Write);
        io.Start();
        await using (stdout)
        {
            await stdout.WriteAsync("to stdout\n"u8.ToArray(), Ct);
        }
        await using (stderr)
        {
            await stderr.WriteAsync("to stderr\n"u8.ToArray(), Ct);
        }

        await WaitForFileAsync(Path.Combine(_files.Dir, "done"));
        Assert.Equal("to stdout\n", await File.ReadAllTextAsync(Path.Combine(_files.Dir, "out"), Encoding.UTF8, Ct));
        Assert.Equal("to stderr\n", await File.ReadAllTextAsync(Path.Combine(_files.Dir, "err"), Encoding.UTF8, Ct));
        Assert.Equal("ns1/c1 flag value\n", await File.ReadAllTextAsync(Path.Combine(_files.Dir, "args"), Encoding.UTF8, Ct));
        Assert.False(io.HoldsUnreadOutput());   // nothing is copied by the shim
    }

    [Fact]
    public async Task A_binary_v2_logger_that_closes_fd_5_without_the_readiness_byte_fails_the_open()
    {
        string script = Logger("exec 5>&-\nexec sleep 30");
        var ex = await Assert.ThrowsAsync<Shim.Core.Errors.ShimException>(() =>
            ProcessIo.OpenAsync(TestStdio.Context, new StdioPaths("", $"binary-v2://{script}", "", Terminal: false), 0, 0, "", "", Ct));
        Assert.Contains("did not signal readiness", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_binary_logger_that_closes_fd_5_without_a_byte_is_ready()
    {
        string script = Logger("exec 5>&-\ncat <&3 > \"$DIR/out\"");
        using var io = await ProcessIo.OpenAsync(TestStdio.Context, new StdioPaths("", $"binary://{script}", "", Terminal: false), 0, 0, "", "", Ct);
        Assert.NotNull(io.RuncSide.Stdout);
    }

    [Fact]
    public async Task A_logger_that_writes_the_readiness_byte_but_keeps_fd_5_open_is_ready_at_the_byte()
    {
        // containerd's shim reads one byte: it does not wait for the close
        string script = Logger("printf x >&5\nexec sleep 30");
        using var io = await ProcessIo.OpenAsync(TestStdio.Context, new StdioPaths("", $"binary-v2://{script}", "", Terminal: false), 0, 0, "", "", Ct)
            .WaitAsync(TimeSpan.FromSeconds(8), Ct);
        Assert.NotNull(io.RuncSide.Stdout);
    }

    [Fact]
    public async Task Waiting_for_a_logger_that_never_signals_ends_with_the_callers_cancellation()
    {
        // a logger that never signals: the wait ends with the caller's cancellation, not a blocked read
        string script = Logger("exec sleep 30");
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var open = ProcessIo.OpenAsync(TestStdio.Context, new StdioPaths("", $"binary://{script}", "", Terminal: false), 0, 0, "", "", cancel.Token);
        Assert.False(open.IsCompleted);
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => open.WaitAsync(TimeSpan.FromSeconds(8), Ct));
    }

    [Fact]
    public async Task A_logger_that_does_not_exist_is_an_invalid_argument()
    {
        var ex = await Assert.ThrowsAsync<Shim.Core.Errors.ShimException>(() =>
            ProcessIo.OpenAsync(TestStdio.Context, new StdioPaths("", $"binary://{_files.Dir}/missing", "", Terminal: false), 0, 0, "", "", Ct));
        Assert.Equal(Shim.Core.Errors.ErrorKind.InvalidArgument, ex.Kind);
    }

    public void Dispose() => _files.Dispose();

    private string Logger(string body)
    {
        string path = Path.Combine(_files.Dir, "logger.sh");
        File.WriteAllText(path, $"#!/bin/sh\nDIR='{_files.Dir}'\n{body}\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    /// <summary>The logger runs on its own: wait for its marker with the directory watched, not with sleeps.</summary>
    private static async Task WaitForFileAsync(string path)
    {
        using var watcher = new FileSystemWatcher(Path.GetDirectoryName(path)!, Path.GetFileName(path)) { EnableRaisingEvents = true };
        var created = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        watcher.Created += (_, _) => created.TrySetResult();
        if (!File.Exists(path))
        {
            await created.Task.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        }
    }
}
