using System.Security.Cryptography;
using System.Text;
using Containerd.Task.V2;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace Shim.E2E.Tests;

/// <summary>
/// Output under back-pressure (issue 6): a reader that stops, or goes away, stalls only the
/// container it reads; every byte still arrives; the shim keeps serving the others.
/// </summary>
public sealed class OutputTests : E2ETest
{
    private const long Size = 32L * 1024 * 1024;
    private const long ReadBeforePause = 1024 * 1024;
    private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(150);

    [Fact]
    public async Task A_paused_reader_stalls_only_its_own_container_and_then_gets_every_byte()
    {
        await PausedReaderAsync(group: null);
    }

    [Fact]
    public async Task A_paused_reader_stalls_nothing_else_in_its_grouped_shim_and_then_gets_every_byte()
    {
        await PausedReaderAsync(group: "out-" + Ns);
    }

    [Fact]
    public async Task When_the_client_goes_away_the_writer_waits_and_its_grouped_shim_keeps_serving_exec_kill_and_delete()
    {
        string group = "gone-" + Ns;
        (await CtrAsync(Grouped(RunArgs("other", detach: true, "sleep", "600"), group))).EnsureSuccess();
        await using (var writer = StartCtr(Grouped(RunArgs("writer", detach: false, "sh", "-c", NumberedLines.Command(null)), group)))
        {
            // it flows, and it is what the container writes
            var expected = NumberedLines.Prefix(64 * 1024);
            var got = new byte[expected.Length];
            await writer.Stdout.ReadExactlyAsync(got, Ct);
            Assert.True(expected.AsSpan().SequenceEqual(got), "the first 64 KiB differ from what the container writes");
            writer.Kill();   // the client goes away; nobody reads the container's stdout any more
        }
        var shims = ProcFs.ShimPids(Ctrd.Socket);
        Assert.True(shims.Count == 1, $"both containers of one group should share one shim, found {shims.Count}");

        // the writer is stuck on a full pipe, but only the writer
        await ExecEchoAsync("other", "e1");
        await ExecEchoAsync("writer", "e2");
        Assert.Matches(@"(?m)^writer\s+\d+\s+RUNNING", (await CtrAsync("task", "ls")).EnsureSuccess().Stdout);

        (await CtrAsync("task", "kill", "-s", "SIGKILL", "writer")).EnsureSuccess();
        await DeleteTaskAsync("writer");
        (await CtrAsync("container", "rm", "writer")).EnsureSuccess();

        await ExecEchoAsync("other", "e3");
        Assert.Equal(shims, ProcFs.ShimPids(Ctrd.Socket));
        var held = ShimFdsTo(shims[0], "writer-std");
        Assert.True(held.Count == 0, "after the delete the shim still holds the writer's stdio: " + string.Join(", ", held));
    }

    [Fact]
    public async Task A_stdout_that_fails_every_write_stalls_neither_stderr_nor_the_exit()
    {
        OursOnly("containerd never hands a shim a device as stdout; this is how the test makes every write fail");
        const long stderrSize = 4L * 1024 * 1024;
        (await CtrAsync(RunArgs("werr", detach: true, "sleep", "600"))).EnsureSuccess();
        string dir = Path.Combine(Ctrd.FifoDir, "werr-exec");
        Directory.CreateDirectory(dir);
        string stderrFifo = Path.Combine(dir, "stderr");
        (await Command.RunAsync("mkfifo", [stderrFifo], ct: Ct)).EnsureSuccess();
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var reading = Task.Run(async () =>
        {
            await using var fs = new FileStream(stderrFifo, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 0);
            return await NumberedLines.ReadIntoAsync(fs, hash, long.MaxValue, Ct);
        }, Ct);

        // /dev/full: every write of the stdout copy fails with ENOSPC; stdout (8 MiB) is far more
        // than the pipe holds, so a copy that stopped reading would block the process for good
        string script = $"yes out | head -c {8 * 1024 * 1024} & {NumberedLines.Command(stderrSize)} >&2; wait; exit 3";
        string spec = """{"args":["sh","-c",""" + System.Text.Json.JsonSerializer.Serialize(script) + """],"cwd":"/","env":["PATH=/bin"],"user":{"uid":0,"gid":0}}""";
        await using var shim = await ShimClient.ConnectAsync(Ctrd, Ns, "werr", Ct);
        await shim.CallAsync("Exec", new ExecProcessRequest
        {
            Id = "werr",
            ExecId = "full",
            Stdout = "/dev/full",
            Stderr = stderrFifo,
            Spec = new Any { TypeUrl = "types.containerd.io/opencontainers/runtime-spec/1/Process", Value = ByteString.CopyFrom(Encoding.UTF8.GetBytes(spec)) },
        }, Empty.Parser, Ct);
        await shim.CallAsync("Start", new StartRequest { Id = "werr", ExecId = "full" }, StartResponse.Parser, Ct);

        long got = await reading.WaitAsync(TimeSpan.FromSeconds(60), Ct);
        var exit = await shim.CallAsync("Wait", new WaitRequest { Id = "werr", ExecId = "full" }, WaitResponse.Parser, Ct);
        await shim.CallAsync("Delete", new DeleteRequest { Id = "werr", ExecId = "full" }, DeleteResponse.Parser, Ct);

        Assert.Equal(3u, exit.ExitStatus);
        Assert.Equal(stderrSize, got);
        Assert.Equal(NumberedLines.ExpectedSha256(stderrSize), Convert.ToHexString(hash.GetHashAndReset()));
        // the loss is not silent: the shim log (in containerd's log) says what was dropped
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!Ctrd.ReadLog().Contains("output bytes could not be delivered", StringComparison.Ordinal) && DateTime.UtcNow < until)
        {
            await Task.Delay(100, Ct);
        }
        Assert.Contains("output bytes could not be delivered", Ctrd.ReadLog(), StringComparison.Ordinal);
        await ExecEchoAsync("werr", "after");
    }

    private async Task PausedReaderAsync(string? group)
    {
        string[] Args(string id, bool detach, params string[] cmd) =>
            group is null ? RunArgs(id, detach, cmd) : Grouped(RunArgs(id, detach, cmd), group);

        (await CtrAsync(Args("other", detach: true, "sleep", "600"))).EnsureSuccess();
        string expected = NumberedLines.ExpectedSha256(Size);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        await using var writer = StartCtr(Args("writer", detach: false, "sh", "-c", NumberedLines.Command(Size)));

        long got = await NumberedLines.ReadIntoAsync(writer.Stdout, hash, ReadBeforePause, Ct);
        Assert.True(got == ReadBeforePause, $"only {got} bytes arrived before the pause; stderr: {writer.Stderr}");
        if (group is not null)
        {
            var shims = ProcFs.ShimPids(Ctrd.Socket);
            Assert.True(shims.Count == 1, $"both containers of one group should share one shim, found {shims.Count}");
        }

        // reader paused: the writer fills every buffer on the way and blocks; nothing else does
        await ExecEchoAsync("other", "e1");
        await ExecEchoAsync("writer", "e2");
        Assert.Matches(@"(?m)^writer\s+\d+\s+RUNNING", (await CtrAsync("task", "ls")).EnsureSuccess().Stdout);

        got += await NumberedLines.ReadIntoAsync(writer.Stdout, hash, long.MaxValue, Ct);
        int exit = await writer.WaitAsync(RunTimeout, Ct);

        Assert.True(exit == 0, $"ctr run exited {exit}; stderr: {writer.Stderr}");
        Assert.Equal(Size, got);
        Assert.Equal(expected, Convert.ToHexString(hash.GetHashAndReset()));
        await ExecEchoAsync("other", "e3");
    }

    private async Task ExecEchoAsync(string id, string execId)
    {
        var r = await CtrAsync("task", "exec", "--fifo-dir", Ctrd.FifoDir, "--exec-id", execId, id, "echo", execId);
        Assert.True(r.ExitCode == 0 && r.Stdout == execId + "\n", $"exec {execId} in {id}: {r.Describe()}");
    }

    /// <summary>Deletes a killed task; it may take a moment to be reported stopped.</summary>
    private async Task DeleteTaskAsync(string id)
    {
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var r = await CtrAsync("task", "delete", id);
            if (r.ExitCode == 0) { return; }
            Assert.True(DateTime.UtcNow < until, $"task {id} could not be deleted: {r.Describe()}");
            await Task.Delay(100, Ct);
        }
    }

    /// <summary>The shim's open fds whose target contains <paramref name="fragment"/>.</summary>
    private static List<string> ShimFdsTo(int shim, string fragment)
    {
        var held = new List<string>();
        foreach (var fd in Directory.EnumerateFileSystemEntries($"/proc/{shim}/fd"))
        {
            try
            {
                if (new FileInfo(fd).LinkTarget is { } target && target.Contains(fragment, StringComparison.Ordinal)) { held.Add(target); }
            }
            catch (IOException) { }
        }
        return held;
    }
}
