using System.Globalization;
using System.Text.RegularExpressions;

namespace Shim.E2E.Tests;

/// <summary>
/// containerd restarts while twenty containers run (issue 6): the shims keep them, answer again,
/// and report what happened while containerd was down.
/// </summary>
public sealed partial class RestartTests : E2ETest
{
    private const int Containers = 20;
    private const int Parallel = 4;
    private static readonly string[] TtyIds = ["r00", "r01", "r02"];
    private static readonly string[] ExecIds = ["r03", "r04", "r05"];
    private const string KilledId = "r18";     // init SIGKILLed while containerd is down: 137
    private const string ExitsId = "r19";      // its sleep child is SIGKILLed, so its shell exits 7 while containerd is down

    // containerd 1.6's exchange logs every event a shim forwards (debug level, which our daemon runs at)
    [GeneratedRegex(@"msg=""event forwarded"".*topic=/tasks/exit\b")]
    private static partial Regex ForwardedExit();

    // 1.7 and 2.x log forwarded events at trace level only; there the shim's own line, copied into containerd's
    // log, says that a queued exit got through once containerd answered (its first try failed: containerd was down)
    [GeneratedRegex(@"msg=""event delivered after retries"" topic=/tasks/exit\b")]
    private static partial Regex DeliveredExit();

    private async Task<string> WaitForStatusAsync(string id, string status)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        string ls = "";
        while (DateTime.UtcNow < deadline)
        {
            ls = (await CtrAsync("task", "ls")).Stdout;
            if (Row(ls, id).Contains(status, StringComparison.Ordinal))
            {
                return ls;
            }
            await Task.Delay(100, Ct);
        }
        Assert.Fail($"{id} never became {status}: {ls}");
        return ls;
    }

    private static string Row(string table, string id) =>
        table.Split('\n').FirstOrDefault(l => l.StartsWith(id + " ", StringComparison.Ordinal)) ?? "";

    private static async Task<string> WaitForAsync(Func<Task<string>> probe, Func<string, bool> done, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        string last = "";
        while (DateTime.UtcNow < deadline)
        {
            last = await probe();
            if (done(last))
            {
                return last;
            }
            await Task.Delay(100, Ct);
        }
        Assert.Fail($"{what} not reached: {last}");
        return last;
    }

    /// <summary>ctr with a terminal of its own (script(1)), as `ctr run -t` and `ctr task exec -t` want.</summary>
    private Task<CommandResult> InTerminalAsync(string ctrArgs) =>
        Command.RunAsync("/usr/bin/script", ["-qefc", $"stty cols 100 rows 30; exec {Ctrd.Ctr} --address {Ctrd.Socket} -n {Ns} {ctrArgs}", "/dev/null"],
            timeout: TimeSpan.FromSeconds(60), ct: Ct);

    private int InitPid(string id) =>
        int.Parse(File.ReadAllText(Path.Combine(Ctrd.BundleDir(Ns, id), "init.pid")).Trim(), CultureInfo.InvariantCulture);

    private async Task ExecEchoAsync(string id, string execId)
    {
        var r = await CtrAsync("task", "exec", "--fifo-dir", Ctrd.FifoDir, "--exec-id", execId, id, "echo", "still " + id);
        Assert.True(r.ExitCode == 0 && r.Stdout == $"still {id}\n", r.Describe());
    }

    [Fact]
    public async Task Twenty_containers_with_execs_and_terminals_survive_a_containerd_restart_and_exits_during_the_outage_are_reported()
    {
        var ids = Enumerable.Range(0, Containers).Select(i => $"r{i:00}").ToList();
        foreach (var id in TtyIds)
        {
            var r = await InTerminalAsync($"run -t -d --fifo-dir {Ctrd.FifoDir} --runtime {Runtime} --rootfs --env PATH=/bin {RootfsDir} {id} sleep 300");
            Assert.True(r.ExitCode == 0, r.Describe());
        }
        foreach (var batch in ids.Except(TtyIds).Chunk(Parallel))
        {
            await Task.WhenAll(batch.Select(async id =>
            {
                string[] command = id == ExitsId ? ["sh", "-c", "sleep 300; exit 7"] : ["sleep", "300"];
                (await CtrAsync(RunArgs(id, detach: true, command))).EnsureSuccess();
            }));
        }
        foreach (var id in ExecIds)
        {
            (await CtrAsync("task", "exec", "-d", "--fifo-dir", Ctrd.FifoDir, "--exec-id", "bg", id, "sleep", "301")).EnsureSuccess();
        }
        var ttyExec = await InTerminalAsync($"task exec -t -d --fifo-dir {Ctrd.FifoDir} --exec-id bgtty {TtyIds[0]} sleep 302");
        Assert.True(ttyExec.ExitCode == 0, ttyExec.Describe());
        var ls = (await CtrAsync("task", "ls")).EnsureSuccess().Stdout;
        Assert.All(ids, id => Assert.Contains("RUNNING", Row(ls, id), StringComparison.Ordinal));

        int killedInit = InitPid(KilledId);
        // the shell of ExitsId is its init; its only child is the sleep
        int exitsInit = InitPid(ExitsId);
        var sleeps = await WaitForAsync(
            () => Task.FromResult(string.Join(' ', ProcFs.Pids().Where(p => ProcStats.Stat(p) is { PPid: var pp } && pp == exitsInit))),
            s => s.Length > 0, $"the sleep child of {ExitsId}");
        int exitsSleep = int.Parse(sleeps.Split(' ')[0], CultureInfo.InvariantCulture);
        // the detached exec of ExecIds[0] (a child of that container's own shim) ends while containerd is down too
        int execShim = ProcFs.ShimPids(Ctrd.Socket, ExecIds[0]).Single();
        int bgExec = ProcFs.Pids().Single(p => ProcStats.Stat(p) is { PPid: var pp } && pp == execShim && ProcFs.Argv(p) is [_, "301"]);
        long logBefore = new FileInfo(Ctrd.LogPath).Length;

        // down: three exits happen while nobody listens for events
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await Ctrd.RestartAsync(Ct, killedInit, exitsSleep, bgExec);
        Log($"containerd restarted in {clock.Elapsed.TotalSeconds:F1} s");

        // the queued exits are delivered once containerd is back: its log shows them forwarded (nothing
        // else of ours exits before we act again, so every exit forwarded here is one of them).
        // 1.6 reconnects to every shim and lists a task whose init exited as STOPPED, so all three come;
        // 1.7 and 2.x ask each shim for its pids while loading, before they serve events, and delete and
        // shut down a shim whose task has none ("cleaning leaked shim process", containerd#6860; the
        // stock Go shim fares the same): the two dead containers' queued exits have nobody to go to and
        // their tasks are gone, while the exec's exit, queued in a shim that lives on, is delivered
        bool cleansDeadShimsWhileLoading = Ctrd.Line.Name != ContainerdLines.System;
        int expected = cleansDeadShimsWhileLoading ? 1 : 3;
        var delivered = cleansDeadShimsWhileLoading ? DeliveredExit() : ForwardedExit();
        string SinceRestart()
        {
            using var fs = new FileStream(Ctrd.LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            fs.Position = logBefore;
            using var reader = new StreamReader(fs);
            return reader.ReadToEnd();
        }
        string[] Forwarded() => [.. SinceRestart().Split('\n').Where(l => delivered.IsMatch(l))];
        await WaitForAsync(() => Task.FromResult(SinceRestart()), log => log.Split('\n').Count(l => delivered.IsMatch(l)) >= expected,
            $"{expected} /tasks/exit forwarded after the restart (the log since is below)");
        Log($"exits delivered {clock.Elapsed.TotalSeconds:F1} s after the restart began:\n{string.Join('\n', Forwarded())}");
        Assert.Equal(expected, Forwarded().Length);

        var survivors = ids.Where(id => id is not KilledId and not ExitsId).ToList();
        ls = await WaitForAsync(async () => (await CtrAsync("task", "ls")).Stdout,
            t => survivors.All(id => Row(t, id).Contains("RUNNING", StringComparison.Ordinal)), "every survivor RUNNING");
        Assert.Equal("", Row((await CtrAsync("task", "ps", ExecIds[0])).EnsureSuccess().Stdout, bgExec.ToString(CultureInfo.InvariantCulture)));

        foreach (var (id, status) in new[] { (KilledId, 137), (ExitsId, 7) })
        {
            ls = await WaitForAsync(async () => (await CtrAsync("task", "ls")).Stdout, t => !Row(t, id).Contains("RUNNING", StringComparison.Ordinal), $"{id} not RUNNING");
            Log($"{id} after the restart: '{Row(ls, id)}'");
            if (cleansDeadShimsWhileLoading)
            {
                Assert.Equal("", Row(ls, id));
                Assert.Contains($"msg=\"cleaning leaked shim process\" id={id} ", SinceRestart(), StringComparison.Ordinal);
                // containerd's Delete there succeeded (an exit still held for its unread output is waited for), so
                // runc's state and cgroup went and the shim shut down instead of living on with nobody to ask it
                await E2EPoll.UntilAsync(() => ProcFs.ShimPids(Ctrd.Socket, id).Count == 0, TimeSpan.FromSeconds(10),
                    $"the shim of {id} still runs 10 s after containerd cleaned it up while loading", Ct);
                Assert.DoesNotContain($"msg=\"failed to delete task\" error=\"rpc error: code = FailedPrecondition", SinceRestart(), StringComparison.Ordinal);
            }
            else
            {
                // the real status: 137 for the SIGKILLed init, 7 from the shell whose sleep was killed
                Assert.Contains("STOPPED", Row(ls, id), StringComparison.Ordinal);
                var del = (await CtrAsync("task", "delete", id)).EnsureSuccess();
                Assert.Contains($"exit code {status}", del.Stderr + del.Stdout, StringComparison.Ordinal);
            }
        }

        // exec works in a few, the detached execs are still there, the terminals are still ptys
        foreach (var id in survivors.Where((_, i) => i % 4 == 0))
        {
            await ExecEchoAsync(id, "after");
        }
        foreach (var id in ExecIds[1..])
        {
            Assert.Contains("bg", (await CtrAsync("task", "ps", id)).EnsureSuccess().Stdout, StringComparison.Ordinal);
        }
        Assert.Contains("bgtty", (await CtrAsync("task", "ps", TtyIds[0])).EnsureSuccess().Stdout, StringComparison.Ordinal);
        foreach (var id in TtyIds)
        {
            var fd0 = await CtrAsync("task", "exec", "--fifo-dir", Ctrd.FifoDir, "--exec-id", "fd0", id, "readlink", "/proc/1/fd/0");
            Assert.True(fd0.ExitCode == 0 && fd0.Stdout.StartsWith("/dev/pts/", StringComparison.Ordinal), fd0.Describe());
            var tty = await InTerminalAsync($"task exec -t --fifo-dir {Ctrd.FifoDir} --exec-id tty {id} tty");
            Assert.True(tty.ExitCode == 0 && tty.Stdout.Contains("/dev/pts/", StringComparison.Ordinal), tty.Describe());
        }

        // kill and delete work for every survivor; each exit shows its status
        foreach (var batch in survivors.Chunk(Parallel))
        {
            await Task.WhenAll(batch.Select(async id =>
            {
                (await CtrAsync("task", "kill", "-s", "SIGKILL", id)).EnsureSuccess();
                await WaitForStatusAsync(id, "STOPPED");
                var del = (await CtrAsync("task", "delete", id)).EnsureSuccess();
                Assert.Contains("exit code 137", del.Stderr + del.Stdout, StringComparison.Ordinal);
            }));
        }
        Assert.Equal("", (await CtrAsync("task", "ls", "-q")).EnsureSuccess().Stdout.Trim());
    }
}
