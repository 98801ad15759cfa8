using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using K8s.Cri.V1;
using Shim.E2E.Tests.Cri.V1;

namespace Shim.E2E.Tests.Cri;

/// <summary>
/// bench/run.sh's "node" phase (issue 24): a node full of pods through CRI, our handler and the
/// line's Go shim side by side in one containerd (our handler with a pause container; on 2.x the
/// sandboxer handler too when RCS_BENCH_NODE_HANDLERS names it). In order: a start storm (pods of
/// all handlers alternating, RCS_BENCH_NODE_INFLIGHT at once), an idle minute (summed PSS,
/// threads, descriptors and wake-ups of the shims), exec probes into every container every
/// RCS_BENCH_NODE_PERIOD seconds for RCS_BENCH_NODE_PROBE_SECONDS (latency, and shim CPU per
/// probe and per pod-hour), a containerd restart with some containers killed while it is down
/// (time until every pod answers again, each killed one reported with 137), and a stop storm.
/// Asserts what a user would check: every container started, every probe and exit code right,
/// nothing left. Writes bench/results/node-&lt;line&gt;.{md,json}.
/// </summary>
[Trait("Category", "Bench")]
public sealed class NodeBench : CriTests
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    private sealed class PodRun(string handler, int index)
    {
        public string Handler { get; } = handler;
        public int Index { get; } = index;
        public string Pod { get; set; } = "";
        public string Container { get; set; } = "";
        public double StartMs { get; set; }
        public double StopMs { get; set; }
        public int Shim { get; set; }
    }

    private sealed record Probe(string Handler, double Ms, bool Answered);

    [Fact]
    public async Task A_node_of_pods_starts_idles_is_probed_survives_a_restart_and_stops()
    {
        int pods = BenchPod.Knob("RCS_BENCH_NODE_PODS", 110);
        int inflight = BenchPod.Knob("RCS_BENCH_NODE_INFLIGHT", 8);
        int probeSeconds = BenchPod.Knob("RCS_BENCH_NODE_PROBE_SECONDS", 600);
        int period = BenchPod.Knob("RCS_BENCH_NODE_PERIOD", 10);
        int idleSeconds = BenchPod.Knob("RCS_BENCH_NODE_IDLE_SECONDS", 60);
        int killed = Math.Min(pods, BenchPod.Knob("RCS_BENCH_NODE_KILLED", 5));
        string[] handlers = Handlers();
        Assert.True(Ctrd.HasPodNetwork, "no CNI tap plugin (containernetworking-plugins >= 1.2, from sid): run scripts/fetch-versions.sh");
        await ImportImagesAsync();
        using var node = new NodeCpu(Ctrd.Pid, Path.GetFileName(Ctrd.Dir), Ctrd.CgroupParent);
        using var cri = new CriClient(Ctrd.Socket);
        var rt = cri.Runtime;
        var runs = Enumerable.Range(0, pods).SelectMany(i => BenchPod.Rotate(handlers, i).Select(h => new PodRun(h, i))).ToList();
        var rows = new List<(string Name, Dictionary<string, double> Values, bool LowerIsBetter)>();
        void Row(string name, Func<string, double> value, bool lowerIsBetter = true) => rows.Add((name, handlers.ToDictionary(h => h, value), lowerIsBetter));
        try
        {
            // start storm
            long nodeNs = node.UsedNs();
            var storm = Stopwatch.StartNew();
            await ForEachInFlightAsync(runs, inflight, r => StartPodAsync(rt, r));
            double startStormS = storm.Elapsed.TotalSeconds;
            double startNodeCpuMs = (node.UsedNs() - nodeNs) / 1e6;
            foreach (var r in runs)
            {
                r.Shim = Assert.Single(ProcFs.ShimPids(Ctrd.Socket, r.Pod));
            }
            var shims = handlers.ToDictionary(h => h, h => runs.Where(r => r.Handler == h).Select(r => r.Shim).Distinct().ToArray());
            Row("pod start in the storm, mean ms", h => runs.Where(r => r.Handler == h).Average(r => r.StartMs));
            Row("pod start in the storm, p90 ms", h => ProcStats.Percentile(runs.Where(r => r.Handler == h).Select(r => r.StartMs), 0.9));
            Row("shim CPU per pod start (serving shims), ms", h => shims[h].Sum(ProcStats.CpuMs) / pods);

            // idle
            await Task.Delay(TimeSpan.FromSeconds(10), Ct);
            var switches0 = handlers.ToDictionary(h => h, h => shims[h].Sum(ProcStats.ContextSwitches));
            await Task.Delay(TimeSpan.FromSeconds(idleSeconds), Ct);
            Row("shim wake-ups per idle minute, all pods", h => (shims[h].Sum(ProcStats.ContextSwitches) - switches0[h]) * 60.0 / idleSeconds);
            Row("summed shim PSS, MiB", h => shims[h].Sum(ProcStats.PssKiB) / 1024.0);
            Row("shim threads", h => shims[h].Sum(ProcStats.Threads));
            Row("shim descriptors", h => shims[h].Sum(ProcStats.Fds));

            // probes
            var probes = await ProbeAsync(rt, runs, shims, handlers, probeSeconds, period);
            Row("probes unanswered after 30 s", h => probes.Latencies.Count(p => p.Handler == h && !p.Answered));
            Row("probe p50 ms", h => ProcStats.Median(probes.Latencies.Where(p => p.Handler == h).Select(p => p.Ms)));
            Row("probe p99 ms", h => ProcStats.Percentile(probes.Latencies.Where(p => p.Handler == h).Select(p => p.Ms), 0.99));
            Row("shim CPU per probe, ms", h => probes.CpuMs[h] / probes.Latencies.Count(p => p.Handler == h));
            Row("shim CPU per pod-hour, probed, ms", h => probes.CpuMs[h] / pods / (probeSeconds / 3600.0));

            // containerd restart, some containers killed while it is down
            var restart = await RestartAsync(rt, runs, handlers, killed, node);
            Row("containerd restart: every pod answers, s", h => restart[h].Seconds);
            // containerd 2.1 drops a loaded shim task whose Pids is empty as leaky (shim_load.go), so CRI
            // finds no task and reports 255 (unknownExitCode) for a container that died meanwhile
            Row("containerd restart: killed meanwhile, reported with their own 137", h => restart[h].KilledExitCodes.Count(c => c == 137), lowerIsBetter: false);
            Log($"exit codes CRI reports for containers SIGKILLed while containerd was down: {string.Join("; ", handlers.Select(h => $"{h} [{string.Join(", ", restart[h].KilledExitCodes)}]"))}");

            // stop storm
            nodeNs = node.UsedNs();
            storm.Restart();
            await ForEachInFlightAsync(runs, inflight, r => StopPodAsync(rt, r));
            double stopStormS = storm.Elapsed.TotalSeconds;
            double stopNodeCpuMs = (node.UsedNs() - nodeNs) / 1e6;
            Row("pod stop in the storm, mean ms", h => runs.Where(r => r.Handler == h).Average(r => r.StopMs));
            Row("pod stop in the storm, p90 ms", h => ProcStats.Percentile(runs.Where(r => r.Handler == h).Select(r => r.StopMs), 0.9));
            await E2EPoll.UntilAsync(() => ProcFs.ShimPids(Ctrd.Socket).Count == 0, TimeSpan.FromSeconds(30), "a shim is still running 30 s after the stop storm", Ct);
            Assert.Empty((await rt.ListPodSandboxAsync(new ListPodSandboxRequest(), Opts())).Items);
            Report(rows, handlers, pods, $"start storm {startStormS:0.0} s and {startNodeCpuMs / runs.Count:0} ms node CPU per pod; stop storm {stopStormS:0.0} s and {stopNodeCpuMs / runs.Count:0} ms node CPU per pod (all handlers, {inflight} in flight)");
        }
        finally
        {
            foreach (var r in runs.Where(r => r.Pod.Length > 0 && r.StopMs == 0))
            {
                await RemovePodAsync(rt, r.Pod, r.Container);
            }
        }
    }

    // RCS_BENCH_NODE_HANDLERS adds the shim sandboxer on 2.x (runcsharp,runc,runcsharp-pod)
    private string[] Handlers() => BenchPod.Handlers(
        "RCS_BENCH_NODE_HANDLERS",
        Ctrd.Line.Major >= 2
            ? [PrivateContainerd.OurCriHandler, PrivateContainerd.StockCriHandler, PrivateContainerd.SandboxerCriHandler]
            : [PrivateContainerd.OurCriHandler, PrivateContainerd.StockCriHandler],
        [PrivateContainerd.OurCriHandler, PrivateContainerd.StockCriHandler]);

    private static async Task ForEachInFlightAsync(List<PodRun> runs, int inflight, Func<PodRun, Task> work)
    {
        using var gate = new SemaphoreSlim(inflight);
        await Task.WhenAll(runs.Select(async r =>
        {
            await gate.WaitAsync(Ct);
            try
            {
                await work(r);
            }
            finally
            {
                gate.Release();
            }
        }));
    }

    private async Task StartPodAsync(RuntimeService.RuntimeServiceClient rt, PodRun r)
    {
        string name = $"node-{r.Handler}-{r.Index}-{Guid.NewGuid().ToString("N")[..6]}";
        var config = BenchPod.Config(Ctrd, name, "rcs-node", "node-pod");
        var container = BenchPod.Sleeper();
        var clock = Stopwatch.StartNew();
        r.Pod = (await rt.RunPodSandboxAsync(new RunPodSandboxRequest { Config = config, RuntimeHandler = r.Handler }, Opts(300))).PodSandboxId;
        r.Container = (await rt.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = r.Pod, Config = container, SandboxConfig = config }, Opts(300))).ContainerId;
        await rt.StartContainerAsync(new StartContainerRequest { ContainerId = r.Container }, Opts(300));
        r.StartMs = clock.Elapsed.TotalMilliseconds;
    }

    private static async Task StopPodAsync(RuntimeService.RuntimeServiceClient rt, PodRun r)
    {
        var clock = Stopwatch.StartNew();
        await rt.StopContainerAsync(new StopContainerRequest { ContainerId = r.Container, Timeout = 10 }, Opts(300));
        await rt.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = r.Pod }, Opts(300));
        await rt.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = r.Pod }, Opts(300));
        r.StopMs = clock.Elapsed.TotalMilliseconds;
    }

    /// <summary>
    /// As kubelet's exec probes: each container once a period, the containers' slots spread evenly
    /// over it, each probe on its own (a slow one does not hold the next back).
    /// </summary>
    private static async Task<(ConcurrentBag<Probe> Latencies, Dictionary<string, double> CpuMs)> ProbeAsync(
        RuntimeService.RuntimeServiceClient rt, List<PodRun> runs, Dictionary<string, int[]> shims, string[] handlers, int seconds, int period)
    {
        var latencies = new ConcurrentBag<Probe>();
        var cpu0 = handlers.ToDictionary(h => h, h => shims[h].Sum(ProcStats.CpuMs));
        var clock = Stopwatch.StartNew();
        var probes = new List<Task>();
        for (int round = 0; round * period < seconds; round++)
        {
            for (int i = 0; i < runs.Count; i++)
            {
                var due = TimeSpan.FromSeconds(round * period + (double)i * period / runs.Count);
                if (due > clock.Elapsed)
                {
                    await Task.Delay(due - clock.Elapsed, Ct);
                }
                var r = runs[i];
                probes.Add(Task.Run(async () =>
                {
                    var t = Stopwatch.StartNew();
                    try
                    {
                        // kubelet's probe timeout is 1 s; a probe still unanswered after 30 s is counted as failed
                        var answer = await rt.ExecSyncAsync(new ExecSyncRequest { ContainerId = r.Container, Cmd = { "/bin/true" }, Timeout = 30 }, Opts(30));
                        Assert.True(answer.ExitCode == 0, $"a probe into {r.Handler} container {r.Container} exited with {answer.ExitCode}: {answer.Stderr.ToStringUtf8()}");
                        latencies.Add(new Probe(r.Handler, t.Elapsed.TotalMilliseconds, true));
                    }
                    // the deadline passing reads as DeadlineExceeded, or as Cancelled when containerd reset the stream first
                    catch (Grpc.Core.RpcException ex) when (ex.StatusCode is Grpc.Core.StatusCode.DeadlineExceeded or Grpc.Core.StatusCode.Cancelled)
                    {
                        latencies.Add(new Probe(r.Handler, t.Elapsed.TotalMilliseconds, false));
                    }
                }));
            }
        }
        await Task.WhenAll(probes);
        var cpu = handlers.ToDictionary(h => h, h => shims[h].Sum(ProcStats.CpuMs) - cpu0[h]);
        return (latencies, cpu);
    }

    /// <summary>
    /// Restarts containerd with <paramref name="killed"/> containers per handler SIGKILLed while it is
    /// down; per handler, the seconds from the restart until each of its pods is READY and each
    /// container RUNNING, or EXITED for the killed ones, and the exit codes CRI reports for those.
    /// </summary>
    private async Task<Dictionary<string, (double Seconds, int[] KilledExitCodes)>> RestartAsync(RuntimeService.RuntimeServiceClient rt, List<PodRun> runs, string[] handlers, int killed, NodeCpu node)
    {
        var victims = handlers.SelectMany(h => runs.Where(r => r.Handler == h).Take(killed)).ToHashSet();
        var pids = new List<int>();
        foreach (var v in victims)
        {
            pids.Add(await ContainerPidAsync(rt, v.Container));
        }
        var clock = Stopwatch.StartNew();
        await Ctrd.RestartAsync(Ct, pids);
        node.Adopt(Ctrd.Pid);
        var answered = new ConcurrentDictionary<string, (double Seconds, int[] KilledExitCodes)>();
        await Task.WhenAll(handlers.Select(async h =>
        {
            var mine = runs.Where(r => r.Handler == h).ToList();
            int[] codes = await Task.WhenAll(mine.Select(r => AnswersAsync(rt, r, victims.Contains(r))));
            answered[h] = (clock.Elapsed.TotalSeconds, mine.Zip(codes).Where(p => victims.Contains(p.First)).Select(p => p.Second).ToArray());
        }));
        return new Dictionary<string, (double, int[])>(answered);
    }

    // the exit code CRI reports for a killed container (0 for the others)
    private static async Task<int> AnswersAsync(RuntimeService.RuntimeServiceClient rt, PodRun r, bool killed)
    {
        int exitCode = 0;
        var want = killed ? ContainerState.ContainerExited : ContainerState.ContainerRunning;
        string seen = "nothing";
        try
        {
            await E2EPoll.UntilAsync(async () =>
            {
                try
                {
                    var pod = await rt.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = r.Pod }, Opts(10));
                    var c = await rt.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = r.Container }, Opts(10));
                    seen = $"pod {pod.Status.State}, container {c.Status.State} exit {c.Status.ExitCode}";
                    exitCode = c.Status.ExitCode;
                    return pod.Status.State == PodSandboxState.SandboxReady && c.Status.State == want;
                }
                catch (Grpc.Core.RpcException ex)
                {
                    seen = ex.Status.ToString();
                    return false;
                }
            }, TimeSpan.FromSeconds(120), "", Ct);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            throw new InvalidOperationException($"{r.Handler} pod {r.Pod} did not answer as {(killed ? "EXITED" : "RUNNING")} within 120 s of the restart; last seen: {seen}", ex);
        }
        return exitCode;
    }

    private void Report(List<(string Name, Dictionary<string, double> Values, bool LowerIsBetter)> rows, string[] handlers, int pods, string storms)
    {
        string stock = PrivateContainerd.StockCriHandler;
        string[] compared = handlers.Where(h => h != stock).ToArray();
        var md = new StringBuilder();
        md.Append(CultureInfo.InvariantCulture, $"a node of {pods} pods per handler through CRI on containerd {Ctrd.Line.Name}; ratios to `{stock}` (the line's Go shim)\n\n");
        md.Append("| | ").AppendJoin(" | ", handlers.Concat(compared.Select(h => $"{h} / {stock}"))).Append(" |\n");
        md.Append("|---|").Append(string.Concat(Enumerable.Repeat("---|", handlers.Length + compared.Length))).Append('\n');
        foreach (var (name, values, _) in rows)
        {
            md.Append("| ").Append(name).Append(" | ")
              .AppendJoin(" | ", handlers.Select(h => values[h].ToString("0.##", CultureInfo.InvariantCulture))
                  .Concat(compared.Select(h => values.TryGetValue(stock, out double s) && s > 0 ? (values[h] / s).ToString("0.00", CultureInfo.InvariantCulture) : "–")))
              .Append(" |\n");
        }
        md.Append('\n').Append(storms).Append('\n');
        string results = Path.Combine(Prereqs.RepoRoot, "bench", "results");
        Directory.CreateDirectory(results);
        File.WriteAllText(Path.Combine(results, $"node-{Ctrd.Line.Name}.md"), md.ToString());
        File.WriteAllText(Path.Combine(results, $"node-{Ctrd.Line.Name}.json"), JsonSerializer.Serialize(rows.ToDictionary(r => r.Name, r => r.Values), Indented));
        Log(md.ToString());
    }
}
