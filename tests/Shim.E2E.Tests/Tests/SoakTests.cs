using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;

namespace Shim.E2E.Tests;

/// <summary>
/// No leaks under load (issue 6): many short container lifecycles, and one grouped shim serving
/// thousands of execs. Long-running, so in their own category (still run by CI, bounded in time);
/// RCS_SOAK_CYCLES and RCS_SOAK_EXECS override the sizes, RCS_SOAK_BUDGET_S the time limit of each loop
/// (a loop that reaches it stops early and says so; the checks then cover what ran). The figures go to the test output.
/// </summary>
[Trait("Category", "Soak")]
[Collection(nameof(SoakCollection))]
public sealed class SoakTests : E2ETest
{
    private const int Workers = 4;
    private const int FdSlack = 4;
    private const int MaxThreads = 64;
    private const int MinCycles = 100;
    private const int MinExecs = 500;
    private static readonly int Cycles = FromEnv("RCS_SOAK_CYCLES", 120);
    private static readonly int Execs = FromEnv("RCS_SOAK_EXECS", 2000);
    private static readonly TimeSpan CycleBudget = TimeSpan.FromSeconds(FromEnv("RCS_SOAK_BUDGET_S", 130));
    private static readonly TimeSpan ExecBudget = TimeSpan.FromSeconds(FromEnv("RCS_SOAK_BUDGET_S", 240));

    private readonly ConcurrentBag<string> _ids = [];
    private readonly ConcurrentDictionary<string, byte> _sockets = new();

    [Fact]
    public async Task Container_lifecycles_with_execs_leave_no_zombie_process_mount_socket_fifo_runc_state_or_cgroup()
    {
        int done = 0, zombiesSeen = 0;
        var shimFds = new ConcurrentBag<int>();
        var shimThreads = new ConcurrentBag<int>();
        var clock = Stopwatch.StartNew();
        int next = -1;
        await Task.WhenAll(Enumerable.Range(0, Workers).Select(worker => Task.Run(async () =>
        {
            int n;
            while ((n = Interlocked.Increment(ref next)) < Cycles && clock.Elapsed < CycleBudget)
            {
                string id = $"soak{n}";
                _ids.Add(id);
                (await CtrAsync(RunArgs(id, detach: true, "sleep", "600"))).EnsureSuccess();
                await RememberSocketAsync(id);
                for (int e = 1; e <= 3; e++)
                {
                    await ExecEchoAsync(id, $"x{e}");
                }

                int shim = ProcFs.ShimPids(Ctrd.Socket, id).Single();
                var sample = ProcStats.Sample(shim);
                shimFds.Add(sample.Fds);
                shimThreads.Add(sample.Threads);
                Interlocked.Add(ref zombiesSeen, ProcStats.ZombieChildren(shim).Count);

                (await CtrAsync("task", "kill", "-s", "SIGKILL", id)).EnsureSuccess();
                await DeleteTaskAsync(id);
                (await CtrAsync("container", "rm", id)).EnsureSuccess();
                Interlocked.Increment(ref done);
            }
        }, Ct)));
        clock.Stop();

        Log($"soak cycles: {done} cycles of run/exec x3/kill/delete/rm with {Workers} workers in {clock.Elapsed.TotalSeconds:F1} s " +
            $"({clock.Elapsed.TotalSeconds / Math.Max(1, done):F2} s per cycle, {done / clock.Elapsed.TotalSeconds:F2} cycles/s)");
        Log($"soak cycles: per-shim after 3 execs: fds {shimFds.Min()}..{shimFds.Max()}, threads {shimThreads.Min()}..{shimThreads.Max()}, zombies seen {zombiesSeen}");
        if (done < Cycles) { Log($"soak cycles: time budget of {CycleBudget.TotalSeconds} s reached after {done} of {Cycles} cycles"); }
        Assert.True(done >= Math.Min(Cycles, MinCycles), $"only {done} of {Cycles} cycles fit in {CycleBudget.TotalSeconds} s");
        Assert.Equal(0, zombiesSeen);
        Assert.True(shimFds.Max() - shimFds.Min() <= FdSlack, $"shims hold {shimFds.Min()}..{shimFds.Max()} fds after the same work");
        Assert.True(shimThreads.Max() <= MaxThreads, $"a shim ran {shimThreads.Max()} threads");
        await AssertNothingLeftAsync();
    }

    [Fact]
    public async Task One_grouped_shim_serving_twenty_containers_keeps_fds_threads_and_memory_flat_over_thousands_of_execs()
    {
        const int containers = 20;
        string group = "soak-" + Ns;
        var ids = Enumerable.Range(0, containers).Select(i => $"grp{i}").ToList();
        foreach (var batch in ids.Chunk(Workers))
        {
            await Task.WhenAll(batch.Select(async id =>
            {
                _ids.Add(id);
                (await CtrAsync(["run", "-d", "--annotation", $"io.containerd.runc.v2.group={group}", .. RunArgs(id, detach: true, "sleep", "600")[2..]])).EnsureSuccess();
                await RememberSocketAsync(id);
            }));
        }

        var shims = ProcFs.ShimPids(Ctrd.Socket);
        Assert.True(shims.Count == 1, $"{containers} containers of one group should share one shim, found {shims.Count}");
        int shim = shims[0];

        // warm up (thread pool, FIFO paths, JIT-free but lazily built state), then measure
        await RunExecsAsync(ids, 2 * containers, "w", TimeSpan.FromSeconds(60), null);
        var before = await SettledSampleAsync(shim, null);
        Log($"grouped shim {shim} before: {before}");

        var trend = new ConcurrentQueue<string>();
        var clock = Stopwatch.StartNew();
        int done = await RunExecsAsync(ids, Execs, "e", ExecBudget, n =>
        {
            if (n % 250 == 0)
            {
                trend.Enqueue($"{n}: {ProcStats.Sample(shim)}");
            }
        });
        clock.Stop();
        var after = await SettledSampleAsync(shim, before);
        var zombies = ProcStats.ZombieChildren(shim);

        Log($"grouped shim: {done} execs (echo, concurrency {Workers}) over {containers} containers in {clock.Elapsed.TotalSeconds:F1} s ({done / clock.Elapsed.TotalSeconds:F1}/s)");
        Log("grouped shim trend:\n  " + string.Join("\n  ", trend));
        Log($"grouped shim {shim} after: {after}; zombies {zombies.Count}");
        Log($"grouped shim delta: fds {after.Fds - before.Fds:+0;-0;0}, threads {after.Threads - before.Threads:+0;-0;0}, " +
            $"RSS {after.RssKiB - before.RssKiB:+0;-0;0} KiB, PSS {after.PssKiB - before.PssKiB:+0;-0;0} KiB " +
            $"({(after.PssKiB - before.PssKiB) / (double)Math.Max(1, done):F2} KiB PSS per exec)");

        if (done < Execs) { Log($"grouped shim: time budget of {ExecBudget.TotalSeconds} s reached after {done} of {Execs} execs"); }
        Assert.True(done >= Math.Min(Execs, MinExecs), $"only {done} of {Execs} execs fit in {ExecBudget.TotalSeconds} s");
        Assert.Empty(zombies);
        Assert.True(after.Fds <= before.Fds + FdSlack, $"fds grew from {before.Fds} to {after.Fds} over {done} execs");
        Assert.True(after.Threads <= MaxThreads, $"{after.Threads} threads after {done} execs");
        // memory: "before" is taken after a warm-up round, so what is left is the managed heap breathing
        // (gen0 budget, pools: a few MiB whatever the count) and whatever each exec leaves behind. Allow
        // 8 MiB for the first plus 4 KiB per exec (16 MiB over 2000): a leaked stdio buffer, pipe or
        // process record per exec (tens of KiB) fails this, GC warm-up does not. Measured on 2026-11-29
        // (1.6, loaded 2-core box): PSS +2.8 MiB over 1657 execs, all of it in the first ~750; flat after.
        long allowedKiB = 8 * 1024 + 4L * done;
        Assert.True(after.RssKiB <= before.RssKiB + allowedKiB, $"RSS grew from {before.RssKiB} to {after.RssKiB} KiB over {done} execs (allowed +{allowedKiB} KiB)");
        Assert.True(after.PssKiB <= before.PssKiB + allowedKiB, $"PSS grew from {before.PssKiB} to {after.PssKiB} KiB over {done} execs (allowed +{allowedKiB} KiB)");

        await Task.WhenAll(ids.Select(id => CtrAsync("task", "kill", "-s", "SIGKILL", id)));
        foreach (var id in ids)
        {
            await DeleteTaskAsync(id);
            (await CtrAsync("container", "rm", id)).EnsureSuccess();
        }
        await AssertNothingLeftAsync();
    }

    private static int FromEnv(string name, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n > 0 ? n : fallback;

    /// <summary>Runs <paramref name="count"/> echo execs round-robin over the containers, <see cref="Workers"/> at a time; returns how many ran.</summary>
    private async Task<int> RunExecsAsync(List<string> ids, int count, string prefix, TimeSpan budget, Action<int>? progress)
    {
        int next = -1, done = 0;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, Workers).Select(_ => Task.Run(async () =>
        {
            int n;
            while ((n = Interlocked.Increment(ref next)) < count && clock.Elapsed < budget)
            {
                await ExecEchoAsync(ids[n % ids.Count], $"{prefix}{n}");
                progress?.Invoke(Interlocked.Increment(ref done));
            }
        }, Ct)));
        return done;
    }

    private async Task ExecEchoAsync(string id, string execId)
    {
        var r = await CtrAsync("task", "exec", "--fifo-dir", Ctrd.FifoDir, "--exec-id", execId, id, "echo", execId);
        Assert.True(r.ExitCode == 0 && r.Stdout == execId + "\n", $"exec {execId} in {id}: {r.Describe()}");
    }

    /// <summary>Deletes a killed task; it may take a moment to be reported stopped.</summary>
    private async Task DeleteTaskAsync(string id)
    {
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (true)
        {
            var r = await CtrAsync("task", "delete", id);
            if (r.ExitCode == 0) { return; }
            Assert.True(DateTime.UtcNow < until, $"task {id} could not be deleted: {r.Describe()}");
            await Task.Delay(50, Ct);
        }
    }

    private async Task RememberSocketAsync(string id)
    {
        string address = (await File.ReadAllTextAsync(Path.Combine(Ctrd.BundleDir(Ns, id), "address"), Ct)).Trim();
        _sockets.TryAdd(address.StartsWith("unix://", StringComparison.Ordinal) ? address["unix://".Length..] : address, 0);
    }

    /// <summary>A sample once the shim has had a moment to close what the last calls used (bounded).</summary>
    private static async Task<ProcSample> SettledSampleAsync(int shim, ProcSample? baseline)
    {
        await Task.Delay(1000, Ct);
        var sample = ProcStats.Sample(shim);
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (baseline is { } b && sample.Fds > b.Fds + FdSlack && DateTime.UtcNow < until)
        {
            await Task.Delay(200, Ct);
            sample = ProcStats.Sample(shim);
        }
        return sample;
    }

    /// <summary>Every container of this test is gone, and so is everything it had.</summary>
    private async Task AssertNothingLeftAsync()
    {
        // shims exit on their own after the last delete
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (ProcFs.ShimPids(Ctrd.Socket).Count > 0 && DateTime.UtcNow < until)
        {
            await Task.Delay(100, Ct);
        }

        var problems = new List<string>();
        var shims = ProcFs.ShimPids(Ctrd.Socket);
        if (shims.Count > 0) { problems.Add($"shim processes still running: {string.Join(", ", shims)}"); }
        foreach (var socket in _sockets.Keys.Where(File.Exists)) { problems.Add($"shim socket left: {socket}"); }
        foreach (var mount in ProcFs.MountsUnder(Ctrd.Dir)) { problems.Add($"mount left: {mount}"); }
        string runcState = Path.Combine("/run/containerd/runc", Ns);
        if (Directory.Exists(runcState))
        {
            foreach (var entry in Directory.EnumerateFileSystemEntries(runcState)) { problems.Add($"runc state left: {entry}"); }
        }
        foreach (var entry in Directory.EnumerateFileSystemEntries(Ctrd.FifoDir, "*", SearchOption.AllDirectories)) { problems.Add($"fifo dir entry left: {entry}"); }
        foreach (var controller in Directory.GetDirectories("/sys/fs/cgroup"))
        {
            foreach (var id in _ids)
            {
                string cgroup = Path.Combine(controller, Ns, id);
                if (Directory.Exists(cgroup)) { problems.Add($"cgroup left: {cgroup}"); }
            }
        }
        foreach (var id in _ids.Where(id => Directory.Exists(Ctrd.BundleDir(Ns, id)))) { problems.Add($"bundle left: {Ctrd.BundleDir(Ns, id)}"); }
        var containers = (await CtrAsync("container", "ls", "-q")).EnsureSuccess().Stdout.Trim();
        if (containers.Length > 0) { problems.Add($"containers left: {containers.ReplaceLineEndings(" ")}"); }

        Log($"leftovers after {_ids.Count} containers: {(problems.Count == 0 ? "none" : problems.Count.ToString(CultureInfo.InvariantCulture))}");
        Assert.True(problems.Count == 0, string.Join("\n", problems.Take(40)));
    }
}

/// <summary>The soak tests run alone: their load must not make the other tests' timing-sensitive paths flaky, nor theirs.</summary>
[CollectionDefinition(nameof(SoakCollection), DisableParallelization = true)]
public sealed class SoakCollection;
