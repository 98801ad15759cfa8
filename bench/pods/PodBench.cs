using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using K8s.Cri.V1;
using Shim.E2E.Tests.Cri.V1;

namespace Shim.E2E.Tests.Cri;

/// <summary>
/// bench/run.sh's "pods" phase (issue 22): pods through CRI on containerd 2.1, one container
/// each (a shell ending on SIGTERM and its `sleep`, in a pid namespace of its own as kubelet
/// asks), for three handlers interleaved pod by pod: runcsharp-pod (our shim as the pod's
/// sandboxer, no pause container), runcsharp (our shim, pause container) and runc (containerd
/// 2.1's Go shim, pause container). Per pod: the time from RunPodSandbox to its container
/// running, the CPU the node spent on it (containerd and all it starts, and the pods: NodeCpu), the
/// whole machine's CPU besides (/proc/stat, the CRI client included), the PSS of its processes once idle
/// (its shim and everything under it: pause or holder, the container), then the time and CPU of
/// its stop and removal. It lives in bench/ and runs with the E2E project's private containerd;
/// the Bench category is never part of scripts/test.sh. Knobs: RCS_BENCH_PODS (per handler,
/// default 10), RCS_BENCH_POD_SETTLE (seconds before memory is read, default 10),
/// RCS_BENCH_HANDLERS (a comma list, default all three). Writes
/// bench/results/pods.json and pods.md; asserts only that every pod ran and left nothing.
/// </summary>
[Trait("Category", "Bench")]
public sealed class PodBench : CriTests
{
    private static readonly string[] AllHandlers = [PrivateContainerd.SandboxerCriHandler, PrivateContainerd.OurCriHandler, PrivateContainerd.StockCriHandler];
    // RCS_BENCH_HANDLERS=runcsharp-pod,runc narrows the run (to trace one handler's processes alone)
    private static readonly string[] Handlers = BenchPod.Handlers("RCS_BENCH_HANDLERS", AllHandlers, AllHandlers);
    private static readonly int[] BusyFields = [1, 2, 3, 6, 7, 8];
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    private sealed record Sample(string Handler, double StartMs, double StartCpuMs, double StopMs, double StopCpuMs, double StartMachineCpuMs, double StopMachineCpuMs, long PssKiB, int Processes);

    private sealed record Timed(double Ms, double CpuMs, double MachineCpuMs);

    private NodeCpu _node = null!;

    [Fact]
    public async Task PodsStartIdleAndStopWithEachHandlerInterleaved()
    {
        Assert.True(Ctrd.Line.Major >= 2, "the pod bench needs containerd 2.x (RCS_CONTAINERD=2.1)");
        Assert.True(Ctrd.HasPodNetwork, "no CNI tap plugin (containernetworking-plugins >= 1.2, from sid): run scripts/fetch-versions.sh");
        int pods = BenchPod.Knob("RCS_BENCH_PODS", 10);
        int settle = BenchPod.Knob("RCS_BENCH_POD_SETTLE", 10);
        await ImportImagesAsync();
        using var node = _node = new NodeCpu(Ctrd.Pid, Path.GetFileName(Ctrd.Dir), Ctrd.CgroupParent);
        using var cri = new CriClient(Ctrd.Socket);
        var rt = cri.Runtime;
        var started = new List<(string Handler, string Pod, string Container, Timed Start)>();
        var samples = new List<Sample>();
        try
        {
            // one untimed pod per handler first: images unpacked, binaries in the page cache
            foreach (string handler in Handlers)
            {
                var warm = await StartPodAsync(rt, handler, "warm");
                await StopPodAsync(rt, warm.Pod, warm.Container);
            }
            for (int i = 0; i < pods; i++)
            {
                foreach (string handler in BenchPod.Rotate(Handlers, i))
                {
                    started.Add(await StartPodAsync(rt, handler, i.ToString(CultureInfo.InvariantCulture)));
                }
            }
            await Task.Delay(TimeSpan.FromSeconds(settle), Ct);
            var memory = started.ToDictionary(p => p.Pod, p => PodMemory(p.Pod));
            for (int i = 0; i < started.Count; i++)
            {
                var p = started[i];
                var stop = await StopPodAsync(rt, p.Pod, p.Container);
                samples.Add(new Sample(p.Handler, p.Start.Ms, p.Start.CpuMs, stop.Ms, stop.CpuMs, p.Start.MachineCpuMs, stop.MachineCpuMs, memory[p.Pod].PssKiB, memory[p.Pod].Processes));
            }
            started.Clear();
        }
        finally
        {
            foreach (var p in started)
            {
                await RemovePodAsync(rt, p.Pod, p.Container);
            }
        }
        await E2EPoll.UntilAsync(() => ProcFs.ShimPids(Ctrd.Socket).Count == 0, TimeSpan.FromSeconds(10), "a pod's shim is still running 10 s after the last pod was removed", Ct);
        Report(samples, pods);
    }

    private async Task<(string Handler, string Pod, string Container, Timed Start)> StartPodAsync(RuntimeService.RuntimeServiceClient rt, string handler, string tag)
    {
        string name = $"bench-{handler}-{tag}-{Guid.NewGuid().ToString("N")[..6]}";
        var config = BenchPod.Config(Ctrd, name, "rcs-bench", "bench");
        var container = BenchPod.Sleeper();
        var clock = StartClocks();
        string pod = (await rt.RunPodSandboxAsync(new RunPodSandboxRequest { Config = config, RuntimeHandler = handler }, Opts(120))).PodSandboxId;
        string cid = (await rt.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = container, SandboxConfig = config }, Opts(120))).ContainerId;
        await rt.StartContainerAsync(new StartContainerRequest { ContainerId = cid }, Opts(120));
        return (handler, pod, cid, clock.Stop());
    }

    private Clocks StartClocks() => new(_node, Stopwatch.StartNew(), _node.UsedNs(), NodeBusyTicks());

    private readonly record struct Clocks(NodeCpu Node, Stopwatch Wall, long NodeNs, long MachineTicks)
    {
        public Timed Stop() => new(Wall.Elapsed.TotalMilliseconds, (Node.UsedNs() - NodeNs) / 1e6, (NodeBusyTicks() - MachineTicks) * 1000.0 / ProcStats.ClockTicksPerSecond);
    }

    // as kubelet ends a pod: its container stopped, then the pod stopped and removed
    private async Task<Timed> StopPodAsync(RuntimeService.RuntimeServiceClient rt, string pod, string container)
    {
        var clock = StartClocks();
        await rt.StopContainerAsync(new StopContainerRequest { ContainerId = container, Timeout = 10 }, Opts(60));
        await rt.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = pod }, Opts(60));
        await rt.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = pod }, Opts(60));
        return clock.Stop();
    }

    /// <summary>The PSS of the pod's shim and every process under it (pause or holder, the container), and how many.</summary>
    private (long PssKiB, int Processes) PodMemory(string pod)
    {
        var shims = ProcFs.ShimPids(Ctrd.Socket, pod);
        var seen = new HashSet<int>();
        var queue = new Queue<int>(shims);
        long pss = 0;
        while (queue.TryDequeue(out int pid))
        {
            if (!seen.Add(pid))
            {
                continue;
            }
            pss += ProcStats.PssKiB(pid);
            foreach (int child in Children(pid))
            {
                queue.Enqueue(child);
            }
        }
        return (pss, seen.Count);
    }

    private static List<int> Children(int pid)
    {
        try
        {
            return Directory.GetDirectories($"/proc/{pid}/task")
                .SelectMany(t => File.ReadAllText(Path.Combine(t, "children")).Split(' ', StringSplitOptions.RemoveEmptyEntries))
                .Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToList();
        }
        catch (IOException)
        {
            return [];
        }
    }

    // user + nice + system + irq + softirq + steal of every CPU: what the node spent, whoever spent it
    private static long NodeBusyTicks()
    {
        string[] f = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return BusyFields.Sum(i => long.Parse(f[i], CultureInfo.InvariantCulture));
    }

    private void Report(List<Sample> samples, int pods)
    {
        string baseline = PrivateContainerd.StockCriHandler;
        string[] compared = Handlers.Contains(baseline) ? Handlers.Where(h => h != baseline).ToArray() : [];
        var rows = new (string Name, Func<Sample, double> Get, Func<IEnumerable<double>, double> Stat)[]
        {
            ("pod start, median ms", s => s.StartMs, ProcStats.Median),
            ("pod start, p90 ms", s => s.StartMs, v => ProcStats.Percentile(v, 0.9)),
            ("node CPU per pod start, median ms", s => s.StartCpuMs, ProcStats.Median),
            ("pod stop+remove, median ms", s => s.StopMs, ProcStats.Median),
            ("node CPU per pod stop, median ms", s => s.StopCpuMs, ProcStats.Median),
            ("node CPU per pod start+stop, median ms", s => s.StartCpuMs + s.StopCpuMs, ProcStats.Median),
            ("machine CPU per pod start+stop incl. the CRI client, median ms", s => s.StartMachineCpuMs + s.StopMachineCpuMs, ProcStats.Median),
            ("PSS per idle pod, median KiB", s => s.PssKiB, ProcStats.Median),
            ("processes per idle pod", s => s.Processes, ProcStats.Median),
        };
        var md = new StringBuilder();
        md.Append(CultureInfo.InvariantCulture, $"pods through CRI on containerd {Ctrd.Line.Name}, {pods} per handler, interleaved; ratios to `{baseline}` (containerd's Go shim with a pause container)\n\n");
        md.Append("| | ").AppendJoin(" | ", Handlers.Concat(compared.Select(h => $"{h} / {baseline}"))).Append(" |\n");
        md.Append("|---|").Append(string.Concat(Enumerable.Repeat("---|", Handlers.Length + compared.Length))).Append('\n');
        var json = new Dictionary<string, object>();
        foreach (var (name, get, stat) in rows)
        {
            var values = Handlers.ToDictionary(h => h, h => stat(samples.Where(s => s.Handler == h).Select(get)));
            md.Append("| ").Append(name).Append(" | ").AppendJoin(" | ", Handlers.Select(h => values[h].ToString("0.#", CultureInfo.InvariantCulture))
              .Concat(compared.Select(h => (values[h] / values[baseline]).ToString("0.00", CultureInfo.InvariantCulture)))).Append(" |\n");
            json[name] = values;
        }
        json["samples"] = samples;
        string results = Path.Combine(Prereqs.RepoRoot, "bench", "results");
        Directory.CreateDirectory(results);
        string file = Handlers.Length == AllHandlers.Length ? "pods" : "pods-" + string.Join('+', Handlers);
        File.WriteAllText(Path.Combine(results, file + ".md"), md.ToString());
        File.WriteAllText(Path.Combine(results, file + ".json"), JsonSerializer.Serialize(json, Indented));
        Log(md.ToString());
    }
}
