using System.Text;
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
    private static readonly string[] PodNamespaces = ["net", "ipc", "uts"];

    [Fact]
    public async Task Two_containers_share_the_pods_network_ipc_and_uts_namespaces_its_files_and_shm_and_teardown_leaves_nothing()
    {
        if (!Ctrd.HasPodNetwork)
        {
            // a pod of its own network namespace: CNI's tap plugin, as CriPodNetnsTests
            throw new InvalidOperationException("no CNI tap plugin (containernetworking-plugins >= 1.2, from sid): run scripts/fetch-versions.sh");
        }
        await ImportImagesAsync();
        using var cri = new CriClient(Ctrd.Socket);
        var rt = cri.Runtime;
        var podName = "rcs-sbx-" + Guid.NewGuid().ToString("N")[..8];
        var podConfig = new PodSandboxConfig
        {
            Metadata = new PodSandboxMetadata { Name = podName, Uid = Guid.NewGuid().ToString(), Namespace = "rcs-e2e" },
            Hostname = "rcs-sbx",
            LogDirectory = Path.Combine(Ctrd.Dir, "pods", podName),
            DnsConfig = new DNSConfig { Servers = { "192.0.2.53" }, Searches = { "rcs.example" }, Options = { "ndots:2" } },
            Linux = new LinuxPodSandboxConfig
            {
                CgroupParent = Ctrd.CgroupParent,
                // one sysctl of the pod's network namespace, one of its IPC namespace
                Sysctls = { ["net.ipv4.ip_unprivileged_port_start"] = "80", ["kernel.shm_rmid_forced"] = "1" },
                SecurityContext = new LinuxSandboxSecurityContext
                {
                    NamespaceOptions = new NamespaceOption { Network = NamespaceMode.Pod, Pid = NamespaceMode.Container, Ipc = NamespaceMode.Pod },
                },
            },
        };
        string podId = "";
        var cids = new List<string>();
        try
        {
            podId = (await rt.RunPodSandboxAsync(new RunPodSandboxRequest { Config = podConfig, RuntimeHandler = PodHandler }, Opts(120))).PodSandboxId;
            string bundle = Path.Combine(Ctrd.Dir, "state", "io.containerd.sandbox.controller.v1.shim", "k8s.io", podId);
            int holder = int.Parse(await File.ReadAllTextAsync(Path.Combine(bundle, "holder.pid"), Ct), System.Globalization.CultureInfo.InvariantCulture);
            string? netns = new FileInfo($"/proc/{holder}/ns/net").LinkTarget;
            Log($"pod {podId}, holder {holder}, {netns}");

            var pod = Assert.Single((await rt.ListPodSandboxAsync(new ListPodSandboxRequest { Filter = new PodSandboxFilter { Id = podId } }, Opts())).Items);
            Assert.Equal(PodSandboxState.SandboxReady, pod.State);
            // no pause container: the k8s.io namespace holds no container yet
            var listed = await Ctrd.CtrAsync("k8s.io", ["containers", "ls", "-q"], ct: Ct);
            Assert.Equal("", listed.EnsureSuccess().Stdout.Trim());

            foreach (string name in new[] { "a", "b" })
            {
                var config = new ContainerConfig
                {
                    Metadata = new ContainerMetadata { Name = name },
                    Image = new ImageSpec { Image = OciImage.Name },
                    Command = { "/bin/sh", "-c", "trap 'exit 143' TERM; while :; do sleep 1 & wait $!; done" },
                    LogPath = name + ".log",
                    Linux = new LinuxContainerConfig { Resources = new LinuxContainerResources() },
                };
                string cid = (await rt.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = podId, Config = config, SandboxConfig = podConfig }, Opts(120))).ContainerId;
                cids.Add(cid);
                await rt.StartContainerAsync(new StartContainerRequest { ContainerId = cid }, Opts(120));
            }

            async Task<string> Exec(string cid, string script)
            {
                var r = await rt.ExecSyncAsync(new ExecSyncRequest { ContainerId = cid, Cmd = { "/bin/sh", "-c", script }, Timeout = 20 }, Opts());
                Assert.True(r.ExitCode == 0, $"`{script}` in {cid} exited {r.ExitCode}: {r.Stderr.ToStringUtf8()}");
                return r.Stdout.ToStringUtf8();
            }

            string namespaces = "for ns in net ipc uts; do readlink /proc/self/ns/$ns; done";
            string inA = await Exec(cids[0], namespaces);
            Assert.Equal(inA, await Exec(cids[1], namespaces));
            Assert.Equal(inA, string.Join("\n", PodNamespaces.Select(ns => new FileInfo($"/proc/{holder}/ns/{ns}").LinkTarget)) + "\n");
            Assert.Equal("rcs-sbx\n", await Exec(cids[1], "hostname"));
            Assert.Equal("search rcs.example\nnameserver 192.0.2.53\noptions ndots:2\n", await Exec(cids[0], "cat /etc/resolv.conf"));
            Assert.Equal(await File.ReadAllTextAsync("/etc/hosts", Ct), await Exec(cids[0], "cat /etc/hosts"));
            Assert.Equal("80\n1\n", await Exec(cids[0], "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shm_rmid_forced"));
            await Exec(cids[0], "echo shared > /dev/shm/x");
            Assert.Equal("shared\n", await Exec(cids[1], "cat /dev/shm/x"));
            Assert.Equal("65536\n", await Exec(cids[1], "df -k /dev/shm | awk 'NR==2 {print $2}'"));

            foreach (string cid in cids)
            {
                await rt.StopContainerAsync(new StopContainerRequest { ContainerId = cid, Timeout = 10 }, Opts(25));
                await rt.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = cid }, Opts(60));
            }
            cids.Clear();
            await rt.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = podId }, Opts(60));
            await rt.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = podId }, Opts(60));
            string removed = podId;
            podId = "";

            Assert.False(IsHolder(holder), $"the holder {holder} outlived its pod");
            Assert.Empty(ProcFs.ShimPids(Ctrd.Socket));
            Assert.False(Directory.Exists(bundle), $"{bundle} is left");
            Assert.False(Directory.Exists(Path.Combine(Ctrd.Dir, "root", "io.containerd.grpc.v1.cri", "sandboxes", removed)), "the pod's hostname/hosts/resolv.conf directory is left");
            string shm = Path.Combine(Ctrd.Dir, "state", "io.containerd.grpc.v1.cri", "sandboxes", removed);
            Assert.False(Directory.Exists(shm), "the pod's shm directory is left");
            Assert.DoesNotContain(await File.ReadAllLinesAsync("/proc/self/mountinfo", Ct), l => l.Contains(removed, StringComparison.Ordinal));
        }
        finally
        {
            foreach (string cid in cids)
            {
                await Ignore(() => rt.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = cid }, Opts(15)).ResponseAsync);
            }
            await RemovePodAsync(rt, podId, "");
        }
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
