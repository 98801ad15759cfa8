using System.Globalization;
using System.Text;
using Grpc.Core;
using K8s.Cri.V1;
using Shim.E2E.Tests.Cri.V1;

namespace Shim.E2E.Tests.Cri;

/// <summary>
/// Issue 22: pods without a pause container. The handler <c>runcsharp-pod</c> has
/// <c>sandboxer = "shim"</c>, so containerd 2.x hands the pod to the shim through the sandbox API
/// and the shim's namespace holder stands where the pause container stood. containerd 1.x has no
/// such mode (scripts/test.sh leaves the category out on those lines).
/// </summary>
[Trait("Category", "Sandboxer")]
public sealed class CriSandboxerTests : CriTests
{
    private const string PodHandler = PrivateContainerd.SandboxerCriHandler;
    private const string Sleeper = "trap 'exit 143' TERM; while :; do sleep 1 & wait $!; done";
    private static readonly string[] PodNamespaces = ["net", "ipc", "uts"];

    [Fact]
    public async Task Two_containers_share_the_pods_network_ipc_and_uts_namespaces_its_files_and_shm_and_teardown_leaves_nothing()
    {
        RequirePodNetwork();
        var podConfig = PodConfig(NamespaceMode.Pod, NamespaceMode.Container, NamespaceMode.Pod);
        podConfig.Hostname = "rcs-sbx";
        podConfig.DnsConfig = new DNSConfig { Servers = { "192.0.2.53" }, Searches = { "rcs.example" }, Options = { "ndots:2" } };
        // one sysctl of the pod's network namespace, one of its IPC namespace
        podConfig.Linux.Sysctls.Add("net.ipv4.ip_unprivileged_port_start", "80");
        podConfig.Linux.Sysctls.Add("kernel.shm_rmid_forced", "1");
        await using var pod = await Pod.RunAsync(this, podConfig);

        // no pause container: the k8s.io namespace holds no container yet
        var listed = await Ctrd.CtrAsync("k8s.io", ["containers", "ls", "-q"], ct: Ct);
        Assert.Equal("", listed.EnsureSuccess().Stdout.Trim());
        string a = await pod.StartContainerAsync("a", Sleeper);
        string b = await pod.StartContainerAsync("b", Sleeper);

        string namespaces = "for ns in net ipc uts; do readlink /proc/self/ns/$ns; done";
        string inA = await pod.ExecAsync(a, namespaces);
        Assert.Equal(inA, await pod.ExecAsync(b, namespaces));
        Assert.Equal(inA, string.Join("\n", PodNamespaces.Select(ns => new FileInfo($"/proc/{pod.Holder}/ns/{ns}").LinkTarget)) + "\n");
        Assert.NotEqual(new FileInfo("/proc/self/ns/net").LinkTarget + "\n", inA.Split('\n')[0] + "\n");
        // these containers carry no namespace options, so CRI points them at the pod's pid namespace
        // too (WithPodNamespaces): as with a pause container, that is never the node's
        Assert.NotEqual(new FileInfo("/proc/self/ns/pid").LinkTarget + "\n", await pod.ExecAsync(a, "readlink /proc/self/ns/pid"));
        Assert.Equal("rcs-sbx\n", await pod.ExecAsync(b, "hostname"));
        Assert.Equal("search rcs.example\nnameserver 192.0.2.53\noptions ndots:2\n", await pod.ExecAsync(a, "cat /etc/resolv.conf"));
        Assert.Equal(await File.ReadAllTextAsync("/etc/hosts", Ct), await pod.ExecAsync(a, "cat /etc/hosts"));
        Assert.Equal("80\n1\n", await pod.ExecAsync(a, "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shm_rmid_forced"));
        await pod.ExecAsync(a, "echo shared > /dev/shm/x");
        Assert.Equal("shared\n", await pod.ExecAsync(b, "cat /dev/shm/x"));
        Assert.Equal("65536\n", await pod.ExecAsync(b, "df -k /dev/shm | awk 'NR==2 {print $2}'"));

        await pod.RemoveAsync();
        await pod.AssertNothingLeftAsync();
    }

    [Fact]
    public async Task A_pod_sharing_its_pid_namespace_has_the_holder_as_PID_1_which_reaps_the_orphans()
    {
        RequirePodNetwork();
        await using var pod = await Pod.RunAsync(this, PodConfig(NamespaceMode.Pod, NamespaceMode.Pod, NamespaceMode.Pod));
        string a = await pod.StartContainerAsync("a", Sleeper);
        string b = await pod.StartContainerAsync("b", Sleeper);

        Assert.Contains("hold-pod-namespaces-init", await pod.ExecAsync(a, "tr '\\0' ' ' < /proc/1/cmdline"), StringComparison.Ordinal);
        Assert.NotEqual("1", (await pod.ExecAsync(a, "echo $PPID")).Trim());
        // each container sees the other's processes
        Assert.Contains("while :", await pod.ExecAsync(b, "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"), StringComparison.Ordinal);
        // a grandchild left behind by an exec is orphaned to PID 1, the holder, which reaps it
        await pod.ExecAsync(a, "(sleep 1 &) ; exit 0");
        await E2EPoll.UntilAsync(() => !HasChildren(pod.Holder), TimeSpan.FromSeconds(15), "the holder still has a child (zombie or sleeper) 15 s after the orphan's sleep 1", Ct);

        await pod.RemoveAsync();
        await pod.AssertNothingLeftAsync();
    }

    // Host network is left out: containerd before 2.3 dereferences the nil spec of a host-network
    // pod in the shim sandboxer's NewBundle and the daemon panics (containerd commit b32cecd,
    // "fix: handle nil spec for hostNetwork containers"), before the shim is started.
    [Fact]
    public async Task A_pod_on_the_nodes_ipc_and_pid_namespaces_gets_no_ipc_pid_or_shm_of_its_own()
    {
        RequirePodNetwork();
        await using var pod = await Pod.RunAsync(this, PodConfig(NamespaceMode.Pod, NamespaceMode.Node, NamespaceMode.Node));
        string a = await pod.StartContainerAsync("a", Sleeper);

        string[] seen = (await pod.ExecAsync(a, "for ns in net ipc uts pid; do readlink /proc/self/ns/$ns; done")).Split('\n');
        string Node(string ns) => new FileInfo($"/proc/self/ns/{ns}").LinkTarget!;
        Assert.Equal((Node("ipc"), Node("pid")), (seen[1], seen[3]));
        Assert.NotEqual(Node("net"), seen[0]);
        Assert.NotEqual(Node("uts"), seen[2]);
        Assert.False(Directory.Exists(pod.ShmDir), "a host-IPC pod got a shm of its own");

        await pod.RemoveAsync();
        await pod.AssertNothingLeftAsync();
    }

    [Fact]
    public async Task A_killed_holder_makes_the_pod_NOTREADY_and_it_is_still_removed_cleanly()
    {
        RequirePodNetwork();
        await using var pod = await Pod.RunAsync(this, PodConfig(NamespaceMode.Pod, NamespaceMode.Container, NamespaceMode.Pod));
        await pod.StartContainerAsync("a", Sleeper);

        await Command.RunAsync("/bin/kill", ["-KILL", pod.Holder.ToString(CultureInfo.InvariantCulture)], ct: Ct);

        await E2EPoll.UntilAsync(async () => await pod.StateAsync() == PodSandboxState.SandboxNotready, TimeSpan.FromSeconds(15), "the pod is still READY 15 s after its holder was killed", Ct);
        await pod.RemoveAsync();
        await pod.AssertNothingLeftAsync();
    }

    [Fact]
    public async Task After_a_containerd_restart_the_pod_is_READY_exec_works_a_new_container_joins_and_teardown_cleans_up()
    {
        RequirePodNetwork();
        await using var pod = await Pod.RunAsync(this, PodConfig(NamespaceMode.Pod, NamespaceMode.Container, NamespaceMode.Pod));
        string a = await pod.StartContainerAsync("a", Sleeper);

        await Ctrd.RestartAsync(Ct);

        Assert.Equal(PodSandboxState.SandboxReady, await pod.StateAsync());
        Assert.Equal("after-restart\n", await pod.ExecAsync(a, "echo after-restart"));
        string b = await pod.StartContainerAsync("b", Sleeper);
        Assert.Equal(await pod.ExecAsync(a, "readlink /proc/self/ns/net"), await pod.ExecAsync(b, "readlink /proc/self/ns/net"));
        await pod.RemoveAsync();
        await pod.AssertNothingLeftAsync();
    }

    [Fact]
    public async Task A_pod_whose_network_fails_to_set_up_starts_no_shim_and_leaves_no_netns()
    {
        RequirePodNetwork();
        await ImportImagesAsync();
        using var cri = new CriClient(Ctrd.Socket);
        var config = PodConfig(NamespaceMode.Pod, NamespaceMode.Container, NamespaceMode.Pod);

        var failed = await Assert.ThrowsAsync<RpcException>(() => cri.Runtime.RunPodSandboxAsync(
            new RunPodSandboxRequest { Config = config, RuntimeHandler = PrivateContainerd.SandboxerFailingCniHandler }, Opts(120)).ResponseAsync);

        Assert.Contains("rcs-fail: this network refuses every pod", failed.Status.Detail, StringComparison.Ordinal);
        string netns = Assert.Single(await File.ReadAllLinesAsync(Path.Combine(Ctrd.Dir, "cni-bin", "adds"), Ct));
        Ctrd.TrackPodNetns(netns);
        Assert.False(File.Exists(netns), $"CRI left the failed pod's netns {netns}");
        await AssertNoPodLeftAsync(cri, config);
    }

    [Fact]
    public async Task A_pod_whose_holder_fails_leaves_no_shim_holder_bundle_or_shm()
    {
        RequirePodNetwork();
        var config = PodConfig(NamespaceMode.Pod, NamespaceMode.Container, NamespaceMode.Pod);
        config.Hostname = "rcs-bad-" + Guid.NewGuid().ToString("N")[..8];
        // no such sysctl: the holder fails writing it, after it made the pod's namespaces
        config.Linux.Sysctls.Add("net.ipv4.rcs_no_such_sysctl", "1");
        await ImportImagesAsync();
        using var cri = new CriClient(Ctrd.Socket);

        var failed = await Assert.ThrowsAsync<RpcException>(() => cri.Runtime.RunPodSandboxAsync(
            new RunPodSandboxRequest { Config = config, RuntimeHandler = PodHandler }, Opts(120)).ResponseAsync);

        Log(failed.Status.Detail);
        Assert.Contains("net.ipv4.rcs_no_such_sysctl", failed.Status.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain(HolderPids(), pid => ProcFs.Argv(pid)?.Contains(config.Hostname) == true);
        await AssertNoPodLeftAsync(cri, config);
    }

    // nothing of a pod that failed to run: no sandbox listed, no shim, no shim bundle, no CRI directory or mount of it
    private async Task AssertNoPodLeftAsync(CriClient cri, PodSandboxConfig config)
    {
        var pods = await cri.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest(), Opts());
        Assert.DoesNotContain(pods.Items, p => p.Metadata.Name == config.Metadata.Name);
        await E2EPoll.UntilAsync(() => ProcFs.ShimPids(Ctrd.Socket).Count == 0, TimeSpan.FromSeconds(10), "a shim is still running 10 s after its pod failed to run", Ct);
        foreach (string dir in new[] { Path.Combine("state", "io.containerd.sandbox.controller.v1.shim", "k8s.io"), Path.Combine("state", "io.containerd.grpc.v1.cri", "sandboxes"), Path.Combine("root", "io.containerd.grpc.v1.cri", "sandboxes") })
        {
            string path = Path.Combine(Ctrd.Dir, dir);
            Assert.True(!Directory.Exists(path) || !Directory.EnumerateFileSystemEntries(path).Any(), $"{path} is not empty after the pod failed to run");
        }
        Assert.DoesNotContain(await File.ReadAllLinesAsync("/proc/self/mountinfo", Ct), l => l.Contains(Ctrd.Dir, StringComparison.Ordinal) && l.Contains("sandboxes", StringComparison.Ordinal));
    }

    private static IEnumerable<int> HolderPids() =>
        ProcFs.Pids().Where(pid => ProcFs.Argv(pid)?.Contains("hold-pod-namespaces") == true);

    private void RequirePodNetwork()
    {
        if (!Ctrd.HasPodNetwork)
        {
            // a pod of its own network namespace: CNI's tap plugin, as CriPodNetnsTests
            throw new InvalidOperationException("no CNI tap plugin (containernetworking-plugins >= 1.2, from sid): run scripts/fetch-versions.sh");
        }
    }

    private PodSandboxConfig PodConfig(NamespaceMode network, NamespaceMode pid, NamespaceMode ipc)
    {
        string name = "rcs-sbx-" + Guid.NewGuid().ToString("N")[..8];
        return new PodSandboxConfig
        {
            Metadata = new PodSandboxMetadata { Name = name, Uid = Guid.NewGuid().ToString(), Namespace = "rcs-e2e" },
            LogDirectory = Path.Combine(Ctrd.Dir, "pods", name),
            Linux = new LinuxPodSandboxConfig
            {
                CgroupParent = Ctrd.CgroupParent,
                SecurityContext = new LinuxSandboxSecurityContext { NamespaceOptions = new NamespaceOption { Network = network, Pid = pid, Ipc = ipc } },
            },
        };
    }

    private static bool HasChildren(int pid) =>
        File.Exists($"/proc/{pid}/task/{pid}/children") && File.ReadAllText($"/proc/{pid}/task/{pid}/children").Trim().Length > 0;

    /// <summary>One pod of the sandboxer handler, and its containers; removed (quietly) on disposal if a test did not.</summary>
    private sealed class Pod : IAsyncDisposable
    {
        private readonly CriSandboxerTests _test;
        private readonly CriClient _cri;
        private readonly PodSandboxConfig _config;
        private readonly List<string> _containers = [];

        private Pod(CriSandboxerTests test, CriClient cri, PodSandboxConfig config, string id, int holder)
        {
            _test = test;
            _cri = cri;
            _config = config;
            Id = id;
            Holder = holder;
        }

        public string Id { get; private set; }
        public int Holder { get; }
        private string RemovedId { get; set; } = "";
        private RuntimeService.RuntimeServiceClient Rt => _cri.Runtime;
        private PrivateContainerd Ctrd => _test.Ctrd;
        public string Bundle => Path.Combine(Ctrd.Dir, "state", "io.containerd.sandbox.controller.v1.shim", "k8s.io", Id.Length > 0 ? Id : RemovedId);
        public string ShmDir => Path.Combine(Ctrd.Dir, "state", "io.containerd.grpc.v1.cri", "sandboxes", Id.Length > 0 ? Id : RemovedId);

        public static async Task<Pod> RunAsync(CriSandboxerTests test, PodSandboxConfig config)
        {
            await test.ImportImagesAsync();
            var cri = new CriClient(test.Ctrd.Socket);
            string id = (await cri.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = config, RuntimeHandler = PodHandler }, Opts(120))).PodSandboxId;
            string bundle = Path.Combine(test.Ctrd.Dir, "state", "io.containerd.sandbox.controller.v1.shim", "k8s.io", id);
            int holder = int.Parse(await File.ReadAllTextAsync(Path.Combine(bundle, "holder.pid"), Ct), CultureInfo.InvariantCulture);
            Log($"pod {id}, holder {holder}, {new FileInfo($"/proc/{holder}/ns/net").LinkTarget}");
            var pod = new Pod(test, cri, config, id, holder);
            Assert.Equal(PodSandboxState.SandboxReady, await pod.StateAsync());
            return pod;
        }

        public async Task<PodSandboxState> StateAsync() =>
            Assert.Single((await Rt.ListPodSandboxAsync(new ListPodSandboxRequest { Filter = new PodSandboxFilter { Id = Id } }, Opts())).Items).State;

        public async Task<string> StartContainerAsync(string name, string script)
        {
            var config = new ContainerConfig
            {
                Metadata = new ContainerMetadata { Name = name },
                Image = new ImageSpec { Image = OciImage.Name },
                Command = { "/bin/sh", "-c", script },
                LogPath = name + ".log",
                Linux = new LinuxContainerConfig { Resources = new LinuxContainerResources() },
            };
            string cid = (await Rt.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = Id, Config = config, SandboxConfig = _config }, Opts(120))).ContainerId;
            _containers.Add(cid);
            await Rt.StartContainerAsync(new StartContainerRequest { ContainerId = cid }, Opts(120));
            return cid;
        }

        public async Task<string> ExecAsync(string cid, string script)
        {
            var r = await Rt.ExecSyncAsync(new ExecSyncRequest { ContainerId = cid, Cmd = { "/bin/sh", "-c", script }, Timeout = 20 }, Opts());
            Assert.True(r.ExitCode == 0, $"`{script}` in {cid} exited {r.ExitCode}: {r.Stderr.ToStringUtf8()}");
            return r.Stdout.ToStringUtf8();
        }

        /// <summary>What kubelet does: each container stopped and removed, then the pod stopped and removed.</summary>
        public async Task RemoveAsync()
        {
            foreach (string cid in _containers)
            {
                await Rt.StopContainerAsync(new StopContainerRequest { ContainerId = cid, Timeout = 10 }, Opts(25));
                await Rt.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = cid }, Opts(60));
            }
            _containers.Clear();
            await Rt.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = Id }, Opts(60));
            await Rt.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = Id }, Opts(60));
            RemovedId = Id;
            Id = "";
        }

        /// <summary>No holder, shim, bundle, CRI sandbox directory, mount or netns of the removed pod is left.</summary>
        public async Task AssertNothingLeftAsync()
        {
            Assert.False(IsHolder(Holder), $"the holder {Holder} outlived its pod");
            // the shim goes once containerd has hung up after ShutdownSandbox, just after RemovePodSandbox returned
            await E2EPoll.UntilAsync(() => ProcFs.ShimPids(Ctrd.Socket).Count == 0, TimeSpan.FromSeconds(10), "the pod's shim is still running 10 s after RemovePodSandbox", Ct);
            Assert.False(Directory.Exists(Bundle), $"{Bundle} is left");
            Assert.False(Directory.Exists(Path.Combine(Ctrd.Dir, "root", "io.containerd.grpc.v1.cri", "sandboxes", RemovedId)), "the pod's hostname/hosts/resolv.conf directory is left");
            Assert.False(Directory.Exists(ShmDir), "the pod's shm directory is left");
            Assert.DoesNotContain(await File.ReadAllLinesAsync("/proc/self/mountinfo", Ct), l => l.Contains(RemovedId, StringComparison.Ordinal));
        }

        public async ValueTask DisposeAsync()
        {
            foreach (string cid in _containers)
            {
                await Ignore(() => Rt.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = cid }, Opts(15)).ResponseAsync);
            }
            if (Id.Length > 0)
            {
                await _test.RemovePodAsync(Rt, Id, "");
            }
            _cri.Dispose();
        }

        private static bool IsHolder(int pid)
        {
            try
            {
                return Encoding.UTF8.GetString(File.ReadAllBytes($"/proc/{pid}/cmdline")).Contains("hold-pod-namespaces", StringComparison.Ordinal);
            }
            catch (IOException)
            {
                return false;
            }
        }
    }
}
