using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Grpc.Core;
using K8s.Cri.V1;
using Shim.E2E.Tests.Cri.V1;

namespace Shim.E2E.Tests.Cri;

/// <summary>
/// Kubernetes pods through containerd's CRI plugin, with the runtime under test as the pod's
/// runtime handler (<c>runcsharp</c>; <c>runc</c>, the stock Go shim, when RCS_E2E_RUNTIME is
/// io.containerd.runc.v2). One pod per test runs the CRI smoke sequence (19 checks, as kubelet
/// would drive a pod's life) plus the grouping check: pause and app container in one shim.
/// </summary>
public abstract partial class CriTests : E2ETest
{
    private const string K8sNs = "k8s.io";
    private const string AppLogLine = "hello-cri";

    private protected override bool WithCri => true;

    /// <summary>The CRI runtime handler of the runtime under test.</summary>
    private protected static string Handler => Prereqs.IsStockRuntime ? PrivateContainerd.StockCriHandler : PrivateContainerd.OurCriHandler;


    [GeneratedRegex(@"^\S+ stdout F " + AppLogLine + "$")]
    private static partial Regex CriLogLine();

    private protected async Task SmokeAsync(bool hostNetwork)
    {
        await ImportImagesAsync();
        using var cri = new CriClient(Ctrd.Socket);
        var rt = cri.Runtime;
        var title = $"[{Ctrd.Line.Name} {Handler} {(hostNetwork ? "host-net" : "pod-netns")}]";
        var checks = new CheckList(title, Log);
        var podName = "rcs-pod-" + Guid.NewGuid().ToString("N")[..8];
        var logDir = Path.Combine(Ctrd.Dir, "pods", podName);
        var podConfig = new PodSandboxConfig
        {
            Metadata = new PodSandboxMetadata { Name = podName, Uid = Guid.NewGuid().ToString(), Namespace = "rcs-e2e", Attempt = 0 },
            // a host-network pod has no UTS namespace of its own: no hostname
            Hostname = hostNetwork ? "" : "rcs-pod",
            LogDirectory = logDir,
            Linux = new LinuxPodSandboxConfig
            {
                CgroupParent = Ctrd.CgroupParent,
                SecurityContext = new LinuxSandboxSecurityContext
                {
                    NamespaceOptions = new NamespaceOption
                    {
                        Network = hostNetwork ? NamespaceMode.Node : NamespaceMode.Pod,
                        Pid = NamespaceMode.Container,
                        Ipc = NamespaceMode.Pod,
                    },
                },
            },
        };
        string podId = "", cid = "";

        try
        {
            await checks.RunAsync("Version", async () =>
            {
                var v = await rt.VersionAsync(new VersionRequest { Version = "v1" }, Opts());
                Log($"{title} runtime {v.RuntimeName} {v.RuntimeVersion}, CRI {v.RuntimeApiVersion}");
                Assert.Equal("containerd", v.RuntimeName);
                Assert.Equal("v1", v.RuntimeApiVersion);
            });
            await checks.RunAsync("Status: RuntimeReady", async () =>
            {
                var s = await rt.StatusAsync(new StatusRequest(), Opts());
                var ready = s.Status.Conditions.FirstOrDefault(c => c.Type == "RuntimeReady");
                Assert.True(ready is { Status: true }, $"RuntimeReady: {ready?.Reason} {ready?.Message}");
                if (!hostNetwork)
                {
                    var net = s.Status.Conditions.FirstOrDefault(c => c.Type == "NetworkReady");
                    Assert.True(net is { Status: true }, $"NetworkReady: {net?.Reason} {net?.Message}");
                }
            });
            await checks.RunAsync("ImageStatus (busybox and pause imported)", async () =>
            {
                foreach (var image in new[] { OciImage.Name, OciImage.PauseName })
                {
                    var until = DateTime.UtcNow.AddSeconds(10);   // CRI learns of `ctr images import` from events
                    ImageStatusResponse r;
                    while ((r = await cri.Images.ImageStatusAsync(new ImageStatusRequest { Image = new ImageSpec { Image = image } }, Opts())).Image is null)
                    {
                        Assert.True(DateTime.UtcNow < until, $"CRI does not see image {image} 10 s after the import");
                        await Task.Delay(100, Ct);
                    }
                    Assert.Contains(image, r.Image.RepoTags);
                }
            }, fatal: true);
            await checks.RunAsync($"RunPodSandbox (handler {Handler})", async () =>
            {
                var r = await rt.RunPodSandboxAsync(new RunPodSandboxRequest { Config = podConfig, RuntimeHandler = Handler }, Opts(120));
                podId = r.PodSandboxId;
                var netns = hostNetwork ? null : await PodNetnsAsync(rt, podId);
                if (netns is not null) { Ctrd.TrackPodNetns(netns); }
                Log($"{title} pod {podId}{(netns is null ? "" : ", netns " + netns)}");
            }, fatal: true);
            await checks.RunAsync("ListPodSandbox: READY" + (hostNetwork ? "" : $", IP {PrivateContainerd.PodIp}"), async () =>
            {
                var l = await rt.ListPodSandboxAsync(new ListPodSandboxRequest { Filter = new PodSandboxFilter { Id = podId } }, Opts());
                var pod = Assert.Single(l.Items);
                Assert.Equal(PodSandboxState.SandboxReady, pod.State);
                Assert.Equal(Handler, pod.RuntimeHandler);
                if (!hostNetwork)
                {
                    var st = await rt.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = podId }, Opts());
                    Assert.Equal(PrivateContainerd.PodIp, st.Status.Network?.Ip);
                }
            });
            await checks.RunAsync("CreateContainer", async () =>
            {
                var config = new ContainerConfig
                {
                    Metadata = new ContainerMetadata { Name = "app", Attempt = 0 },
                    Image = new ImageSpec { Image = OciImage.Name },
                    // the app is pid 1 of its own pid namespace (kubelet's default): SIGTERM needs a handler
                    Command = { "/bin/sh", "-c", $"trap 'exit 143' TERM; echo {AppLogLine}; while :; do sleep 1 & wait $!; done" },
                    LogPath = "app.log",
                    Linux = new LinuxContainerConfig { Resources = new LinuxContainerResources() },
                };
                var r = await rt.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = podId, Config = config, SandboxConfig = podConfig }, Opts(120));
                cid = r.ContainerId;
                Log($"{title} container {cid}");
            }, fatal: true);
            await checks.RunAsync("StartContainer", async () =>
                await rt.StartContainerAsync(new StartContainerRequest { ContainerId = cid }, Opts(120)), fatal: true);
            await checks.RunAsync("ContainerStatus: RUNNING", async () =>
            {
                var s = await rt.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = cid }, Opts());
                Assert.Equal(ContainerState.ContainerRunning, s.Status.State);
            });
            await checks.RunAsync("grouping: one shim process serves the pause and the app container", async () =>
            {
                // every shim of this daemon carries "-address <its socket>"; this daemon runs only this pod
                var shims = ProcFs.ShimPids(Ctrd.Socket);
                var described = shims.Select(p => $"{p} [{string.Join(' ', ProcFs.Argv(p) ?? [])}] rss {RssKiB(p)} KiB").ToList();
                Log($"{title} shim processes: {(described.Count == 0 ? "none" : string.Join("; ", described))}; memory of the pod's shims: {shims.Sum(RssKiB)} KiB RSS");
                Assert.True(shims.Count == 1, $"expected 1 shim process for pod {podId}, found {shims.Count}: {string.Join("; ", described)}");
                // and it is that shim that reaps both: each container's init has it as parent (subreaper)
                var pausePid = await PodPidAsync(rt, podId);
                var appPid = await ContainerPidAsync(rt, cid);
                Assert.True(ParentPid(pausePid) == shims[0] && ParentPid(appPid) == shims[0],
                    $"pause pid {pausePid} has parent {ParentPid(pausePid)}, app pid {appPid} has parent {ParentPid(appPid)}; the shim is {shims[0]}");
            });
            await checks.RunAsync("ExecSync: stdout", async () =>
            {
                var r = await rt.ExecSyncAsync(new ExecSyncRequest { ContainerId = cid, Cmd = { "/bin/sh", "-c", "echo exec-ok" }, Timeout = 20 }, Opts());
                Assert.True(r.ExitCode == 0 && r.Stdout.ToStringUtf8() == "exec-ok\n",
                    $"exit {r.ExitCode}, stdout \"{r.Stdout.ToStringUtf8()}\", stderr \"{r.Stderr.ToStringUtf8()}\"");
            });
            await checks.RunAsync("ExecSync: exit code 3", async () =>
            {
                var r = await rt.ExecSyncAsync(new ExecSyncRequest { ContainerId = cid, Cmd = { "/bin/sh", "-c", "exit 3" }, Timeout = 20 }, Opts());
                Assert.Equal(3, r.ExitCode);
            });
            await checks.RunAsync("ContainerStats", async () =>
            {
                var r = await rt.ContainerStatsAsync(new ContainerStatsRequest { ContainerId = cid }, Opts());
                Assert.Equal(cid, r.Stats?.Attributes?.Id);
                Assert.True(r.Stats!.Memory?.WorkingSetBytes is not null, "no memory.working_set_bytes");
                Assert.True(r.Stats.Cpu?.UsageCoreNanoSeconds is not null, "no cpu.usage_core_nano_seconds");
                Log($"{title} stats: working set {r.Stats.Memory!.WorkingSetBytes.Value} B, cpu {r.Stats.Cpu!.UsageCoreNanoSeconds.Value} ns");
            });
            await checks.RunAsync("UpdateContainerResources (memory limit 64 MiB reaches the cgroup)", async () =>
            {
                const long limit = 64L * 1024 * 1024;
                await rt.UpdateContainerResourcesAsync(new UpdateContainerResourcesRequest
                {
                    ContainerId = cid,
                    Linux = new LinuxContainerResources { MemoryLimitInBytes = limit, CpuShares = 512 },
                }, Opts());
                var pid = await ContainerPidAsync(rt, cid);
                var cg = MemoryCgroupLimit(pid);
                Assert.True(cg == limit, $"memory limit in the cgroup of pid {pid} is {cg}, expected {limit}");
            });
            await checks.RunAsync($"CRI log file: first line \"<time> stdout F {AppLogLine}\"", async () =>
            {
                var file = Path.Combine(logDir, "app.log");
                var until = DateTime.UtcNow.AddSeconds(5);
                string first = "";
                while (true)
                {
                    if (File.Exists(file)) { first = (await File.ReadAllLinesAsync(file, Ct)).FirstOrDefault() ?? ""; }
                    if (first.Length > 0 || DateTime.UtcNow > until) { break; }
                    await Task.Delay(100, Ct);
                }
                Assert.True(CriLogLine().IsMatch(first), $"first line of {file}: \"{first}\"");
            });
            // fatal: when CRI never sees the container stop, every later call waits for it too
            await checks.RunAsync("StopContainer", async () =>
                await rt.StopContainerAsync(new StopContainerRequest { ContainerId = cid, Timeout = 10 }, Opts(25)), fatal: true);
            await checks.RunAsync("ContainerStatus: EXITED, exit code 143", async () =>
            {
                var s = await rt.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = cid }, Opts());
                Assert.Equal(ContainerState.ContainerExited, s.Status.State);
                Assert.Equal(143, s.Status.ExitCode);
            });
            await checks.RunAsync("RemoveContainer", async () =>
            {
                await rt.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = cid }, Opts(60));
                cid = "";
            });
            await checks.RunAsync("StopPodSandbox", async () =>
                await rt.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = podId }, Opts(60)));
            await checks.RunAsync("RemovePodSandbox", async () =>
                await rt.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = podId }, Opts(60)));
            await checks.RunAsync("pod gone (ListPodSandbox empty, PodSandboxStatus NotFound)", async () =>
            {
                var l = await rt.ListPodSandboxAsync(new ListPodSandboxRequest { Filter = new PodSandboxFilter { Id = podId } }, Opts());
                Assert.Empty(l.Items);
                var e = await Assert.ThrowsAsync<RpcException>(async () =>
                    await rt.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = podId }, Opts()));
                Assert.Equal(StatusCode.NotFound, e.StatusCode);
                podId = "";
            });
        }
        finally
        {
            // whatever failed above: take the pod down while the daemon is still there, briefly
            // (when CRI hangs on the pod, disposal kills the daemon and the shims by PID anyway)
            await RemovePodAsync(rt, podId, cid);
        }
        checks.AssertAllPassed();
    }

    private protected static CallOptions Opts(int seconds = 30) => CriClient.Opts(Ct, TimeSpan.FromSeconds(seconds));

    private protected async Task ImportImagesAsync()
    {
        foreach (var archive in new[] { await OciImage.GetAsync(), await OciImage.GetPauseAsync() })
        {
            (await Ctrd.CtrAsync(K8sNs, ["images", "import", archive], timeout: TimeSpan.FromSeconds(120), ct: Ct)).EnsureSuccess();
        }
    }

    private protected static async Task<int> ContainerPidAsync(RuntimeService.RuntimeServiceClient rt, string cid)
    {
        var s = await rt.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = cid, Verbose = true }, Opts());
        if (!s.Info.TryGetValue("info", out var json)) { throw new InvalidOperationException("ContainerStatus(verbose) has no info"); }
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.GetProperty("pid").GetInt32();
    }

    private static async Task<int> PodPidAsync(RuntimeService.RuntimeServiceClient rt, string podId)
    {
        var s = await rt.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = podId, Verbose = true }, Opts());
        if (!s.Info.TryGetValue("info", out var json)) { throw new InvalidOperationException("PodSandboxStatus(verbose) has no info"); }
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.GetProperty("pid").GetInt32();
    }

    private static int ParentPid(int pid)
    {
        try
        {
            var l = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(x => x.StartsWith("PPid:", StringComparison.Ordinal));
            return l is null ? -1 : int.Parse(l.Split('\t', ' ').Last(x => x.Length > 0), CultureInfo.InvariantCulture);
        }
        catch (IOException) { return -1; }
    }

    /// <summary>memory.limit_in_bytes of a process's memory cgroup (v1), or memory.max (v2).</summary>
    private static long MemoryCgroupLimit(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/cgroup"))
        {
            var parts = line.Split(':', 3);
            if (parts.Length != 3) { continue; }
            string file;
            if (parts[1].Split(',').Contains("memory")) { file = $"/sys/fs/cgroup/memory{parts[2]}/memory.limit_in_bytes"; }
            else if (parts[0] == "0" && parts[1].Length == 0 && File.Exists("/sys/fs/cgroup/cgroup.controllers")) { file = $"/sys/fs/cgroup{parts[2]}/memory.max"; }
            else { continue; }
            return long.Parse(File.ReadAllText(file).Trim(), CultureInfo.InvariantCulture);
        }
        throw new InvalidOperationException($"no memory cgroup for pid {pid}");
    }

    private static long RssKiB(int pid)
    {
        try
        {
            var l = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(x => x.StartsWith("VmRSS:", StringComparison.Ordinal));
            return l is null ? 0 : long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
        }
        catch (IOException) { return 0; }
    }

    /// <summary>Runs a cleanup call; false when it timed out (CRI is stuck on this pod).</summary>
    /// <summary>Takes the container and the pod down, briefly; when CRI hangs, the daemon's disposal kills by PID instead.</summary>
    private protected async Task RemovePodAsync(RuntimeService.RuntimeServiceClient rt, string podId, string cid)
    {
        var ok = cid.Length == 0 || await Ignore(() => rt.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = cid }, Opts(15)).ResponseAsync);
        if (podId.Length > 0 && ok)
        {
            ok = await Ignore(() => rt.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = podId }, Opts(15)).ResponseAsync)
                 && await Ignore(() => rt.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = podId }, Opts(15)).ResponseAsync);
        }
        if (!ok) { Ctrd.SkipCriCleanup(); }
    }

    private protected static async Task<bool> Ignore(Func<Task> f)
    {
        try { await f(); return true; }
        catch (RpcException e)
        {
            Log($"cleanup: {e.StatusCode}: {e.Status.Detail}");
            return e.StatusCode != StatusCode.DeadlineExceeded;
        }
    }

    /// <summary>The pod's network namespace path (/var/run/netns/cni-…) from its runtime spec.</summary>
    private static async Task<string?> PodNetnsAsync(RuntimeService.RuntimeServiceClient rt, string podId)
    {
        var s = await rt.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = podId, Verbose = true }, Opts());
        if (!s.Info.TryGetValue("info", out var json)) { return null; }
        using var doc = JsonDocument.Parse(json);
        if (!doc.RootElement.TryGetProperty("runtimeSpec", out var spec)
            || !spec.TryGetProperty("linux", out var linux) || !linux.TryGetProperty("namespaces", out var nss)) { return null; }
        foreach (var ns in nss.EnumerateArray())
        {
            if (ns.TryGetProperty("type", out var t) && t.GetString() == "network" && ns.TryGetProperty("path", out var p)) { return p.GetString(); }
        }
        return null;
    }
}

/// <summary>A pod in the host's network namespace (no CNI involved).</summary>
/// <remarks>One class per pod kind: xunit runs classes in parallel, tests of one class in sequence.</remarks>
public sealed class CriHostNetworkPodTests : CriTests
{
    [Fact]
    public Task A_host_network_pod_passes_the_CRI_smoke_sequence() => SmokeAsync(hostNetwork: true);
}

/// <summary>A pod with its own network namespace, networked by sid's CNI tap plugin.</summary>
public sealed class CriPodNetnsTests : CriTests
{
    [Fact]
    public async Task A_pod_with_its_own_network_namespace_passes_the_CRI_smoke_sequence()
    {
        if (!Ctrd.HasPodNetwork)
        {
            const string why = "no CNI tap plugin (containernetworking-plugins >= 1.2, from sid): run scripts/fetch-versions.sh";
            if (Prereqs.IsCi) { throw new InvalidOperationException(why + " (CI=true: a missing prerequisite fails the run)"); }
            Assert.Skip(why);
        }
        await SmokeAsync(hostNetwork: false);
    }
}
