using System.Globalization;

namespace Shim.E2E.Tests;

/// <summary>Stats through `ctr task metrics` and OOM events, on this machine's cgroup v1.</summary>
public sealed class CgroupTests : E2ETest
{
    [Fact]
    public async Task Metrics_show_real_memory_and_pids_figures()
    {
        (await CtrAsync(RunArgs("met1", detach: true, "sleep", "300"))).EnsureSuccess();
        var table = (await CtrAsync("task", "metrics", "met1")).EnsureSuccess().Stdout;
        Assert.True(Value(table, "memory.usage_in_bytes") > 0, table);
        Assert.Equal(1, Value(table, "pids.current"));
    }

    [Fact]
    public async Task An_oom_killed_container_gets_its_oom_event_before_its_exit_event()
    {
        await using var events = Ctrd.StartEvents();
        await events.EnsureSubscribedAsync(Ctrd, Ns, Ct);
        string[] args = [.. RunArgs("oom1", detach: false, "sh", "-c", "a=$(yes | head -c 200000000); echo survived")];
        args = [.. args[..1], "--memory-limit", (32 * 1024 * 1024).ToString(CultureInfo.InvariantCulture), .. args[1..]];
        var r = await CtrAsync(args, null, TimeSpan.FromSeconds(120));
        Assert.True(r.ExitCode == 137, r.Describe());

        var seen = await events.WaitForAsync(es => es.Any(e => e.Namespace == Ns && e.Topic == "/tasks/exit"), TimeSpan.FromSeconds(20), "/tasks/exit", Ct);
        var topics = seen.Where(e => e.Namespace == Ns && e.Topic is "/tasks/oom" or "/tasks/exit").Select(e => e.Topic).ToList();
        Assert.True(topics.Count >= 2 && topics[0] == "/tasks/oom", "events: " + string.Join(", ", topics));
        Assert.Contains("oom1", seen.First(e => e.Topic == "/tasks/oom").Json, StringComparison.Ordinal);
    }

    // `ctr task metrics` prints "METRIC  VALUE" rows after the header
    private static long Value(string table, string metric) =>
        table.Split('\n')
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .Where(f => f.Length >= 2 && f[0] == metric)
            .Select(f => long.Parse(f[1], CultureInfo.InvariantCulture))
            .DefaultIfEmpty(-1)
            .First();
}
