using Containerd.Runtime.Sandbox.V1;
using Google.Protobuf;
using K8s.Cri.V1;
using Shim.Core.Errors;
using Shim.Core.Logging;
using Shim.Core.Service;
using Shim.Core.Tests.Service;
using Shim.Os;
using Shim.Os.Mounting;
using Shim.Os.Namespaces;
using Shim.Protos;

namespace Shim.Core.Tests.Sandbox;

/// <summary>
/// The sandbox API over a fake holder (a `sleep` child): the pod's life from CreateSandbox to
/// ShutdownSandbox, the files CRI mounts, and every bad request answered with its status. The
/// bundle is laid out as containerd's sandbox controller makes it (state and root, a work link).
/// </summary>
public sealed class SandboxServiceTests : TaskServiceTestBase
{
    private const string PodId = "pod1";
    private readonly string _top = Directory.CreateTempSubdirectory("rcs-pod-").FullName;
    private readonly FakeHolderRunner _holder = new();
    private SandboxService? _sandbox;

    private SandboxService Sandbox => _sandbox ??= new SandboxService(_holder, Router, ShimLogger.Discard, Service);

    private string PodBundle
    {
        get
        {
            string bundle = Path.Combine(_top, "state", "io.containerd.sandbox.controller.v1.shim", "k8s.io", PodId);
            if (!Directory.Exists(bundle))
            {
                string work = Path.Combine(_top, "root", "io.containerd.sandbox.controller.v1.shim", "k8s.io", PodId);
                Directory.CreateDirectory(bundle);
                Directory.CreateDirectory(work);
                File.CreateSymbolicLink(Path.Combine(bundle, "work"), work);
            }
            return bundle;
        }
    }

    private string CriRoot => Path.Combine(_top, "root", "io.containerd.grpc.v1.cri", "sandboxes", PodId);
    private string CriShm => Path.Combine(_top, "state", "io.containerd.grpc.v1.cri", "sandboxes", PodId, "shm");

    private static PodSandboxConfig Config(NamespaceMode network = NamespaceMode.Pod, NamespaceMode pid = NamespaceMode.Container, NamespaceMode ipc = NamespaceMode.Pod) => new()
    {
        Hostname = "web-0",
        DnsConfig = new DNSConfig { Servers = { "10.96.0.10", "10.96.0.11" }, Searches = { "default.svc.cluster.local", "svc.cluster.local" }, Options = { "ndots:5" } },
        Linux = new LinuxPodSandboxConfig
        {
            Sysctls = { ["net.ipv4.ip_unprivileged_port_start"] = "0" },
            SecurityContext = new LinuxSandboxSecurityContext { NamespaceOptions = new NamespaceOption { Network = network, Pid = pid, Ipc = ipc } },
        },
    };

    private CreateSandboxRequest Create(PodSandboxConfig? config = null) => new()
    {
        SandboxId = PodId,
        BundlePath = PodBundle,
        NetnsPath = "/var/run/netns/cni-1234",
        Options = TypeUrls.Pack(config ?? Config()),
    };

    [Fact]
    public async Task A_pod_lives_from_create_to_shutdown_with_its_files_and_its_holder()
    {
        await Sandbox.CreateSandboxAsync(Create(), Ct);

        Assert.Equal("web-0\n", await File.ReadAllTextAsync(Path.Combine(CriRoot, "hostname"), Ct));
        Assert.Equal(await File.ReadAllTextAsync("/etc/hosts", Ct), await File.ReadAllTextAsync(Path.Combine(CriRoot, "hosts"), Ct));
        Assert.Equal("search default.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.10\nnameserver 10.96.0.11\noptions ndots:5\n",
            await File.ReadAllTextAsync(Path.Combine(CriRoot, "resolv.conf"), Ct));
        Assert.True(Mounts.IsMountPoint(CriShm), "no tmpfs at the pod's shm");
        var created = await Sandbox.SandboxStatusAsync(new SandboxStatusRequest { SandboxId = PodId }, Ct);
        Assert.Equal((SandboxService.NotReady, 0u), (created.State, created.Pid));

        var started = await Sandbox.StartSandboxAsync(new StartSandboxRequest { SandboxId = PodId }, Ct);

        Assert.True(_holder.Pids.TryPeek(out int pid));
        Assert.Equal((uint)pid, started.Pid);
        var spec = Assert.Single(_holder.Specs);
        Assert.Equal(("/var/run/netns/cni-1234", NewNamespaces.Uts | NewNamespaces.Ipc | NewNamespaces.Pid, "web-0"), (spec.NetworkNamespace, spec.New, spec.Hostname));
        Assert.Equal([new("net.ipv4.ip_unprivileged_port_start", "0")], spec.Sysctls);
        Assert.Equal(pid.ToString(System.Globalization.CultureInfo.InvariantCulture), await File.ReadAllTextAsync(Path.Combine(PodBundle, "holder.pid"), Ct));
        var ready = await Sandbox.SandboxStatusAsync(new SandboxStatusRequest { SandboxId = PodId }, Ct);
        Assert.Equal((SandboxService.Ready, (uint)pid, started.CreatedAt), (ready.State, ready.Pid, ready.CreatedAt));
        var wait = Sandbox.WaitSandboxAsync(new WaitSandboxRequest { SandboxId = PodId }, Ct);
        Assert.False(wait.IsCompleted);

        await Sandbox.StopSandboxAsync(new StopSandboxRequest { SandboxId = PodId }, Ct);

        Assert.Equal(137u, (await wait).ExitStatus);
        var stopped = await Sandbox.SandboxStatusAsync(new SandboxStatusRequest { SandboxId = PodId }, Ct);
        Assert.Equal(SandboxService.NotReady, stopped.State);
        Assert.False(Timestamps.IsZero(stopped.ExitedAt));
        await Sandbox.StopSandboxAsync(new StopSandboxRequest { SandboxId = PodId }, Ct);   // a second stop is no error, as containerd retries it

        await Sandbox.ShutdownSandboxAsync(new ShutdownSandboxRequest { SandboxId = PodId }, Ct);

        Assert.False(Directory.Exists(CriRoot));
        Assert.False(Directory.Exists(Path.GetDirectoryName(CriShm)));
        Assert.False(Mounts.IsMountPoint(CriShm));
        Assert.True(Service.ShutdownRequested.IsCompleted, "the shim did not go with its pod");
    }

    [Theory]
    [InlineData(NamespaceMode.Pod, NamespaceMode.Pod, NamespaceMode.Pod, NewNamespaces.Uts | NewNamespaces.Ipc | NewNamespaces.Pid)]
    [InlineData(NamespaceMode.Node, NamespaceMode.Container, NamespaceMode.Pod, NewNamespaces.Ipc | NewNamespaces.Pid)]
    [InlineData(NamespaceMode.Pod, NamespaceMode.Container, NamespaceMode.Pod, NewNamespaces.Uts | NewNamespaces.Ipc | NewNamespaces.Pid)]
    [InlineData(NamespaceMode.Pod, NamespaceMode.Node, NamespaceMode.Node, NewNamespaces.Uts)]
    [InlineData(NamespaceMode.Node, NamespaceMode.Node, NamespaceMode.Node, NewNamespaces.None)]
    public async Task The_holder_gets_the_namespaces_the_pod_asks_for(NamespaceMode network, NamespaceMode pid, NamespaceMode ipc, NewNamespaces expected)
    {
        var request = Create(Config(network, pid, ipc));
        if (network == NamespaceMode.Node)
        {
            request.NetnsPath = "";
        }
        await Sandbox.CreateSandboxAsync(request, Ct);
        await Sandbox.StartSandboxAsync(new StartSandboxRequest { SandboxId = PodId }, Ct);

        var spec = Assert.Single(_holder.Specs);
        Assert.Equal(expected, spec.New);
        Assert.Equal(network == NamespaceMode.Node ? null : "/var/run/netns/cni-1234", spec.NetworkNamespace);
        // host IPC: the containers use the node's /dev/shm, so the pod has none of its own
        Assert.Equal(ipc != NamespaceMode.Node, Mounts.IsMountPoint(CriShm));
    }

    [Fact]
    public async Task A_holder_that_dies_ends_WaitSandbox_and_the_pod_is_no_longer_ready()
    {
        await Sandbox.CreateSandboxAsync(Create(), Ct);
        var started = await Sandbox.StartSandboxAsync(new StartSandboxRequest { SandboxId = PodId }, Ct);
        var wait = Sandbox.WaitSandboxAsync(new WaitSandboxRequest { SandboxId = PodId }, Ct);

        Signals.Kill((int)started.Pid, Signals.SIGTERM);

        Assert.Equal(143u, (await wait.WaitAsync(TimeSpan.FromSeconds(10), Ct)).ExitStatus);
        Assert.Equal(SandboxService.NotReady, (await Sandbox.SandboxStatusAsync(new SandboxStatusRequest { SandboxId = PodId }, Ct)).State);
        await Sandbox.StopSandboxAsync(new StopSandboxRequest { SandboxId = PodId }, Ct);   // stopping a dead pod succeeds
    }

    [Fact]
    public async Task A_holder_that_fails_to_start_says_why_and_the_pod_can_be_started_again()
    {
        await Sandbox.CreateSandboxAsync(Create(), Ct);
        _holder.FailWith = "setns network namespace /var/run/netns/cni-1234: No such file or directory (ENOENT)";

        var ex = await Assert.ThrowsAsync<ShimException>(() => Sandbox.StartSandboxAsync(new StartSandboxRequest { SandboxId = PodId }, Ct));

        Assert.Equal($"start sandbox {PodId}: holding the pod's namespaces failed: {_holder.FailWith}", ex.Message);
        Assert.Equal((0, 0), Router.Counts);
        _holder.FailWith = null;
        await Sandbox.StartSandboxAsync(new StartSandboxRequest { SandboxId = PodId }, Ct);
        Assert.Equal(SandboxService.Ready, (await Sandbox.SandboxStatusAsync(new SandboxStatusRequest { SandboxId = PodId }, Ct)).State);
    }

    [Fact]
    public async Task A_create_that_fails_half_way_leaves_no_file_or_mount_and_the_pod_can_be_created_again()
    {
        // the hosts file cannot be written: its path is taken by a directory
        Directory.CreateDirectory(Path.Combine(CriRoot, "hosts", "x"));

        // as the server calls it: a failure that does not say what it was doing is told as the request's
        var create = TaskService.InContext<CreateSandboxRequest, CreateSandboxResponse>(Sandbox.CreateSandboxAsync);
        var ex = await Assert.ThrowsAsync<ShimException>(() => create(Create(), new Shim.Ttrpc.TtrpcCallContext(SandboxService.Name, "CreateSandbox")).AsTask());

        Assert.StartsWith($"create sandbox {PodId}: Access to the path ", ex.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(CriRoot));
        Assert.False(Mounts.IsMountPoint(CriShm));
        Assert.False(Directory.Exists(Path.GetDirectoryName(CriShm)));
        await Sandbox.CreateSandboxAsync(Create(), Ct);
        Assert.True(Mounts.IsMountPoint(CriShm));
    }

    [Fact]
    public async Task A_bundle_without_containerds_work_link_is_refused_as_invalid()
    {
        var request = Create();
        File.Delete(Path.Combine(request.BundlePath, "work"));

        var ex = await Assert.ThrowsAsync<ShimException>(() => Sandbox.CreateSandboxAsync(request, Ct));

        Assert.Equal(ErrorKind.InvalidArgument, ex.Kind);
        Assert.Equal($"create sandbox {PodId}: bundle {request.BundlePath} has no work link to containerd's root: not a sandbox bundle of containerd 2.x", ex.Message);
    }

    [Fact]
    public async Task Task_Shutdown_does_not_end_the_shim_while_its_pod_lives()
    {
        await Sandbox.CreateSandboxAsync(Create(), Ct);
        await Sandbox.StartSandboxAsync(new StartSandboxRequest { SandboxId = PodId }, Ct);

        // containerd calls it after a container's delete, or when a container's create failed
        await Service.ShutdownAsync(new Containerd.Task.V2.ShutdownRequest(), Ct);
        Assert.False(Service.ShutdownRequested.IsCompleted);

        await Sandbox.ShutdownSandboxAsync(new ShutdownSandboxRequest { SandboxId = PodId }, Ct);
        Assert.True(Service.ShutdownRequested.IsCompleted);
    }

    [Fact]
    public async Task After_ShutdownSandbox_the_shim_waits_for_containerd_to_hang_up_before_it_goes()
    {
        await Sandbox.CreateSandboxAsync(Create(), Ct);
        await Sandbox.StartSandboxAsync(new StartSandboxRequest { SandboxId = PodId }, Ct);
        using var connection = new CancellationTokenSource();

        await Sandbox.ShutdownSandboxAsync(new ShutdownSandboxRequest { SandboxId = PodId }, Ct, connection.Token);
        Assert.False(Service.ShutdownRequested.IsCompleted, "the shim went while containerd could still be reading the answer");

        await connection.CancelAsync();   // containerd closes its client
        Assert.True(Service.ShutdownRequested.IsCompleted);
    }

    [Fact]
    public async Task ShutdownSandbox_leaves_the_shim_to_a_container_still_there_until_its_Task_Shutdown()
    {
        await Sandbox.CreateSandboxAsync(Create(), Ct);
        await Sandbox.StartSandboxAsync(new StartSandboxRequest { SandboxId = PodId }, Ct);
        await RunningContainerAsync();

        await Sandbox.ShutdownSandboxAsync(new ShutdownSandboxRequest { SandboxId = PodId }, Ct);
        Assert.False(Service.ShutdownRequested.IsCompleted, "the shim went while a container was left");

        await Service.KillAsync(new Containerd.Task.V2.KillRequest { Id = "c1", Signal = 9 }, Ct);
        await Service.WaitAsync(new Containerd.Task.V2.WaitRequest { Id = "c1" }, Ct).WaitAsync(TimeSpan.FromSeconds(10), Ct);
        await Service.DeleteAsync(new Containerd.Task.V2.DeleteRequest { Id = "c1" }, Ct);
        await Service.ShutdownAsync(new Containerd.Task.V2.ShutdownRequest(), Ct);
        Assert.True(Service.ShutdownRequested.IsCompleted);
    }

    public static TheoryData<string, Func<SandboxService, CreateSandboxRequest, Task>, ErrorKind, string> BadRequests() => new()
    {
        { "empty id", (s, r) => s.CreateSandboxAsync(With(r, x => x.SandboxId = ""), Ct), ErrorKind.InvalidArgument, "create sandbox: container id \"\" must not be empty" },
        { "id with a slash", (s, r) => s.CreateSandboxAsync(With(r, x => x.SandboxId = "../x"), Ct), ErrorKind.InvalidArgument, "create sandbox: container id \"../x\" must match" },
        { "relative bundle", (s, r) => s.CreateSandboxAsync(With(r, x => x.BundlePath = "state/pod1"), Ct), ErrorKind.InvalidArgument, "create sandbox pod1: bundle path \"state/pod1\" is not absolute" },
        { "a rootfs", (s, r) => s.CreateSandboxAsync(With(r, x => x.Rootfs.Add(new Containerd.Types.Mount { Type = "bind", Source = "/x" })), Ct), ErrorKind.InvalidArgument, "create sandbox pod1: a sandbox rootfs (1 mounts) is not supported" },
        { "options of another type", (s, r) => s.CreateSandboxAsync(With(r, x => x.Options = TypeUrls.Pack(new Containerd.Runc.V1.Options())), Ct), ErrorKind.InvalidArgument, "create sandbox pod1: options are a containerd.runc.v1.Options, not a runtime.v1.PodSandboxConfig" },
        { "malformed options", (s, r) => s.CreateSandboxAsync(With(r, x => x.Options.Value = ByteString.CopyFrom(0x0a, 0xff)), Ct), ErrorKind.InvalidArgument, "create sandbox pod1: malformed runtime.v1.PodSandboxConfig" },
        { "start before create", (s, _) => s.StartSandboxAsync(new StartSandboxRequest { SandboxId = PodId }, Ct), ErrorKind.NotFound, "sandbox pod1: not created" },
        { "wait before create", (s, _) => s.WaitSandboxAsync(new WaitSandboxRequest { SandboxId = PodId }, Ct), ErrorKind.NotFound, "sandbox pod1: not created" },
        { "status with no id", (s, _) => s.SandboxStatusAsync(new SandboxStatusRequest(), Ct), ErrorKind.InvalidArgument, "sandbox id must not be empty" },
        { "a second create", async (s, r) => { await s.CreateSandboxAsync(r, Ct); await s.CreateSandboxAsync(r, Ct); }, ErrorKind.AlreadyExists, "create sandbox pod1: sandbox pod1 already exists" },
        { "another pod", async (s, r) => { await s.CreateSandboxAsync(r, Ct); await s.CreateSandboxAsync(With(r, x => x.SandboxId = "pod2"), Ct); }, ErrorKind.AlreadyExists, "create sandbox pod2: this shim already serves sandbox pod1" },
        { "another pod's status", async (s, r) => { await s.CreateSandboxAsync(r, Ct); await s.SandboxStatusAsync(new SandboxStatusRequest { SandboxId = "pod2" }, Ct); }, ErrorKind.NotFound, "sandbox pod2: not found (this shim serves sandbox pod1)" },
        { "a second start", async (s, r) => { await s.CreateSandboxAsync(r, Ct); await s.StartSandboxAsync(new StartSandboxRequest { SandboxId = PodId }, Ct); await s.StartSandboxAsync(new StartSandboxRequest { SandboxId = PodId }, Ct); }, ErrorKind.FailedPrecondition, "start sandbox pod1: sandbox is running, not created" },
        { "start after stop", async (s, r) => { await s.CreateSandboxAsync(r, Ct); await s.StopSandboxAsync(new StopSandboxRequest { SandboxId = PodId }, Ct); await s.StartSandboxAsync(new StartSandboxRequest { SandboxId = PodId }, Ct); }, ErrorKind.FailedPrecondition, "start sandbox pod1: sandbox is stopped, not created" },
        { "metrics", async (s, r) => { await s.CreateSandboxAsync(r, Ct); await s.SandboxMetricsAsync(new SandboxMetricsRequest { SandboxId = PodId }, Ct); }, ErrorKind.NotImplemented, "metrics of sandbox pod1: not implemented" },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task A_bad_request_gets_its_status_and_says_what_was_attempted(string what, Func<SandboxService, CreateSandboxRequest, Task> call, ErrorKind kind, string message)
    {
        _ = what;
        var ex = await Assert.ThrowsAsync<ShimException>(() => call(Sandbox, Create()));

        Assert.Equal(kind, ex.Kind);
        Assert.StartsWith(message, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_holder_command_line_carries_the_spec_whole()
    {
        var spec = new HolderSpec("/var/run/netns/cni-1", NewNamespaces.Uts | NewNamespaces.Pid, "web-0", [new("kernel.shm_rmid_forced", "1"), new("net.ipv4.ping_group_range", "0 2147483647")]);

        var back = NamespaceHolder.Parse([.. NamespaceHolder.Arguments(spec).Skip(1)]);

        Assert.Equal((spec.NetworkNamespace, spec.New, spec.Hostname), (back.NetworkNamespace, back.New, back.Hostname));
        Assert.Equal(spec.Sysctls, back.Sysctls);
    }

    private static CreateSandboxRequest With(CreateSandboxRequest request, Action<CreateSandboxRequest> change)
    {
        var copy = request.Clone();
        change(copy);
        return copy;
    }

    // the holders (sleeps), the pod's shm and the fake containerd tree
    protected override void CleanUpFirst()
    {
        foreach (int pid in _holder.Pids)
        {
            Signals.Kill(pid, Signals.SIGKILL);
        }
        Mounts.UnmountRecursive(CriShm);
        Directory.Delete(_top, recursive: true);
    }
}
