using System.Globalization;
using System.Net.Sockets;
using System.Text.Json;
using Grpc.Core;
using Grpc.Net.Client;
using K8s.Cri.V1;
using Shim.E2E.Tests.Cri.V1;

// rcs-cri SOCKET COMMAND ARGS... -- one CRI step per call, answers on stdout as key=value words:
//   up NAME HANDLER CGROUP_PARENT   pod (host network) + "app" (sleeps) + "oom" (32 MiB limit,
//                                   wants 200 MB), both started: pod= app= app_pid= oom=
//   status CID                      state= exit= reason=
//   stats CID                       memory= (working set bytes) cpu= (core ns)
//   update CID MEMORY CPU_QUOTA CPU_PERIOD
//   down POD                        stop and remove the pod and its containers
// Exit status 1 with the gRPC status on stderr when a call fails.
if (args.Length < 2)
{
    await Console.Error.WriteLineAsync("usage: rcs-cri SOCKET up|status|stats|update|down ARGS...");
    return 2;
}
using var channel = Channel(args[0]);
var rt = new RuntimeService.RuntimeServiceClient(channel);
try
{
    Console.WriteLine(args[1] switch
    {
        "up" => await Up(rt, args[2], args[3], args[4]),
        "status" => await Status(rt, args[2]),
        "stats" => await Stats(rt, args[2]),
        "update" => await Update(rt, args[2], long.Parse(args[3], CultureInfo.InvariantCulture), long.Parse(args[4], CultureInfo.InvariantCulture), long.Parse(args[5], CultureInfo.InvariantCulture)),
        "down" => await Down(rt, args[2]),
        _ => throw new ArgumentException("unknown command " + args[1]),
    });
    return 0;
}
catch (RpcException e)
{
    await Console.Error.WriteLineAsync($"rcs-cri {args[1]}: {e.StatusCode}: {e.Status.Detail}");
    return 1;
}

static GrpcChannel Channel(string socket) => GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions
{
    HttpHandler = new SocketsHttpHandler
    {
        ConnectCallback = async (_, ct) =>
        {
            var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await s.ConnectAsync(new UnixDomainSocketEndPoint(socket), ct);
            return new NetworkStream(s, ownsSocket: true);
        },
    },
});

// TCG is slow: a pod start can take a minute
static CallOptions Opts() => new(deadline: DateTime.UtcNow.AddMinutes(4));

static async Task<string> Up(RuntimeService.RuntimeServiceClient rt, string name, string handler, string cgroupParent)
{
    var pod = new PodSandboxConfig
    {
        Metadata = new PodSandboxMetadata { Name = name, Uid = Guid.NewGuid().ToString(), Namespace = "rcs-vm" },
        LogDirectory = "/tmp/rcs-pods/" + name,
        Linux = new LinuxPodSandboxConfig
        {
            CgroupParent = cgroupParent,
            SecurityContext = new LinuxSandboxSecurityContext
            {
                NamespaceOptions = new NamespaceOption { Network = NamespaceMode.Node, Pid = NamespaceMode.Container, Ipc = NamespaceMode.Pod },
            },
        },
    };
    var podId = (await rt.RunPodSandboxAsync(new RunPodSandboxRequest { Config = pod, RuntimeHandler = handler }, Opts())).PodSandboxId;
    async Task<string> Start(string cname, long memory, params string[] cmd)
    {
        var config = new ContainerConfig
        {
            Metadata = new ContainerMetadata { Name = cname },
            Image = new ImageSpec { Image = "localhost/rcs/busybox:1" },
            Command = { cmd },
            LogPath = cname + ".log",
            Linux = new LinuxContainerConfig { Resources = new LinuxContainerResources { MemoryLimitInBytes = memory } },
        };
        var cid = (await rt.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = podId, Config = config, SandboxConfig = pod }, Opts())).ContainerId;
        await rt.StartContainerAsync(new StartContainerRequest { ContainerId = cid }, Opts());
        return cid;
    }
    var app = await Start("app", 0, "/bin/sh", "-c", "trap 'exit 143' TERM; while :; do sleep 1 & wait $!; done");
    var oom = await Start("oom", 32L * 1024 * 1024, "/bin/sh", "-c", "a=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived");
    var s = await rt.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = app, Verbose = true }, Opts());
    using var info = JsonDocument.Parse(s.Info["info"]);
    return $"pod={podId} app={app} app_pid={info.RootElement.GetProperty("pid").GetInt32()} oom={oom}";
}

static async Task<string> Status(RuntimeService.RuntimeServiceClient rt, string cid)
{
    var s = (await rt.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = cid }, Opts())).Status;
    return $"state={s.State} exit={s.ExitCode} reason={s.Reason}";
}

static async Task<string> Stats(RuntimeService.RuntimeServiceClient rt, string cid)
{
    var s = (await rt.ContainerStatsAsync(new ContainerStatsRequest { ContainerId = cid }, Opts())).Stats;
    return $"memory={s?.Memory?.WorkingSetBytes?.Value.ToString(CultureInfo.InvariantCulture) ?? "-"} cpu={s?.Cpu?.UsageCoreNanoSeconds?.Value.ToString(CultureInfo.InvariantCulture) ?? "-"}";
}

static async Task<string> Update(RuntimeService.RuntimeServiceClient rt, string cid, long memory, long quota, long period)
{
    await rt.UpdateContainerResourcesAsync(new UpdateContainerResourcesRequest
    {
        ContainerId = cid,
        Linux = new LinuxContainerResources { MemoryLimitInBytes = memory, CpuQuota = quota, CpuPeriod = period },
    }, Opts());
    return "updated";
}

static async Task<string> Down(RuntimeService.RuntimeServiceClient rt, string podId)
{
    await rt.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = podId }, Opts());
    await rt.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = podId }, Opts());
    return "removed";
}
