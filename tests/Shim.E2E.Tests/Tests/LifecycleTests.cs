namespace Shim.E2E.Tests;

/// <summary>A detached container through its whole life: run -d, ls, ps, kill, delete, rm.</summary>
public sealed class LifecycleTests : E2ETest
{
    [Fact]
    public async Task A_detached_container_runs_lists_its_pid_and_stops_with_137_on_SIGKILL()
    {
        await using var events = Ctrd.StartEvents();
        await events.EnsureSubscribedAsync(Ctrd, Ns, Ct);

        (await CtrAsync(RunArgs("life1", detach: true, "sleep", "300"))).EnsureSuccess();

        var ls = (await CtrAsync("task", "ls")).EnsureSuccess();
        var row = TaskRow(ls.Stdout, "life1");
        Assert.True(row is { Status: "RUNNING" }, $"task ls: {ls.Stdout}");
        Assert.True(row!.Pid > 0, $"task ls: {ls.Stdout}");

        var ps = (await CtrAsync("task", "ps", "life1")).EnsureSuccess();
        Assert.Contains(ps.Stdout.Split('\n').Skip(1), l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault() == row.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture));

        (await CtrAsync("task", "kill", "-s", "SIGKILL", "life1")).EnsureSuccess();

        var seen = await events.WaitForAsync(es => es.Any(e => e.Namespace == Ns && e.Topic == "/tasks/exit" && e.Json.Contains("\"life1\"", StringComparison.Ordinal)),
            TimeSpan.FromSeconds(20), "/tasks/exit for life1", Ct);
        var exit = seen.First(e => e.Namespace == Ns && e.Topic == "/tasks/exit" && e.Json.Contains("\"life1\"", StringComparison.Ordinal));
        Assert.Contains("\"exit_status\":137", exit.Json, StringComparison.Ordinal);

        var stopped = (await CtrAsync("task", "ls")).EnsureSuccess();
        Assert.True(TaskRow(stopped.Stdout, "life1") is { Status: "STOPPED" }, $"task ls after SIGKILL: {stopped.Stdout}");

        // ctr 1.6 `task delete` exits 0 and reports a non-zero status as a warning on stderr
        var del = (await CtrAsync("task", "delete", "life1")).EnsureSuccess();
        Assert.Contains("exit code 137", del.Stderr, StringComparison.Ordinal);
        (await CtrAsync("container", "rm", "life1")).EnsureSuccess();

        Assert.DoesNotContain("life1", (await CtrAsync("task", "ls", "-q")).EnsureSuccess().Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("life1", (await CtrAsync("container", "ls", "-q")).EnsureSuccess().Stdout, StringComparison.Ordinal);
    }

    private sealed record Row(string Id, int Pid, string Status);

    // "TASK    PID     STATUS" then one row per task
    private static Row? TaskRow(string table, string id) =>
        table.Split('\n').Skip(1)
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length >= 3 && f[0] == id)
            .Select(f => new Row(f[0], int.Parse(f[1], System.Globalization.CultureInfo.InvariantCulture), f[2]))
            .FirstOrDefault();
}
