using System.Text;
using Containerd.Runtime.Bootstrap.V1;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Shim.Core.Cgroups;
using Shim.Core.Cli;
using Shim.Core.Errors;
using Shim.Core.Options;
using Shim.Core.Processes;
using Shim.Os.Mounting;
using Shim.Runc;
using static Shim.Ttrpc.Fuzz.Targets.Fuzzing;

namespace Shim.Ttrpc.Fuzz.Targets;

/// <summary>
/// What the shim reads back from outside a request: start's stdin (bootstrap or legacy options),
/// its command line, the bundle's exit record, options.json, pid files and config.json, runc's
/// JSON log, /proc/self/mountinfo, /proc/&lt;pid&gt;/cgroup and the cgroup files behind Stats. A broken
/// or hostile file must never throw anything but the documented failure (most throw nothing).
/// </summary>
internal static class RecoveryParserTargets
{
    public static IEnumerable<ByteTarget> All =>
    [
        new("bootstrap", "src/Shim.Core/Cli/StartBootstrap.cs", BootstrapSeeds, Bootstrap),
        new("shim-args", "src/Shim.Core/Cli/ShimArgs.cs", ShimArgsSeeds, ShimArgsTarget),
        new("bundle-files", "src/Shim.Core/Processes/ExitRecord.cs, PidFile.cs, Container.cs (SpecSharesPidNamespace), src/Shim.Core/Options/OptionsCodec.cs (FromJson)", BundleSeeds, BundleFiles),
        new("runc-log", "src/Shim.Runc/RuncLog.cs", RuncLogSeeds, RuncLogTarget),
        new("mountinfo", "src/Shim.Os/Mounting/MountInfo.cs", MountInfoSeeds, MountInfoTarget),
        new("cgroup-files", "src/Shim.Core/Cgroups/ProcCgroup.cs, CgroupFiles.cs, RdmaFile.cs, HugePageSizes.cs, CgroupV1*.cs, CgroupV2.cs", CgroupSeeds, CgroupTarget),
    ];

    // ---- start's stdin ----

    private static IEnumerable<(string, byte[])> BootstrapSeeds()
    {
        var options = new Any { TypeUrl = "containerd.runc.v1.Options", Value = new Containerd.Runc.V1.Options { BinaryName = "runc", ShimCgroup = "/s" }.ToByteString() };
        yield return ("bootstrap", new BootstrapParams
        {
            InstanceId = "c1", Namespace = "default", LogLevel = LogLevel.Debug, ContainerdVersion = "2.3.0", ContainerdTtrpcAddress = "/run/containerd/containerd.sock.ttrpc",
            ContainerdGrpcAddress = "/run/containerd/containerd.sock", ContainerdBinary = "/usr/bin/containerd", SocketDir = "/run/containerd/s", Extensions = { new Containerd.Runtime.Bootstrap.V1.Extension { Value = options } },
        }.ToByteArray());
        yield return ("bootstrap-other-id", new BootstrapParams { InstanceId = "c2", Namespace = "default", LogLevel = LogLevel.Trace }.ToByteArray());
        yield return ("legacy-any", options.ToByteArray());
        yield return ("empty", []);
    }

    private static void Bootstrap(ReadOnlySpan<byte> input)
    {
        byte[] stdin = input.ToArray();
        var read = Never("StartBootstrap.Read", () => StartBootstrap.Read(stdin, "c1", "default"));
        _ = Never("StartBootstrap.Answer", () => StartBootstrap.Answer(read, "unix:///run/containerd/s/0123", maxShimVersionSet: stdin.Length % 2 == 0, podSandbox: stdin.Length % 3 == 0));
        if (read.Options is { } options)
        {
            // what serve mode does with them (the shim cgroup) and Create later
            RequestParserTargets.DecodeOptions(options);
        }
    }

    // ---- the command line: NUL-separated argv ----

    private static IEnumerable<(string, byte[])> ShimArgsSeeds()
    {
        yield return ("start", Utf8("-namespace\0default\0-address\0/run/containerd/containerd.sock\0-publish-binary\0/usr/bin/containerd\0-id\0c1\0-debug\0start"));
        yield return ("delete", Utf8("--namespace=k8s.io\0-id=c1\0-bundle\0/run/b\0-debug=false\0delete"));
        yield return ("info", Utf8("-info\0-v=1\0--\0-x"));
    }

    private static void ShimArgsTarget(ReadOnlySpan<byte> input)
    {
        string[] argv = input.IsEmpty ? [] : Fields(input, '\0');
        _ = Expect("ShimArgs.Parse", () => ShimArgs.Parse(argv), ex => ex is ArgumentException);
    }

    // ---- bundle files: byte 0 picks the file, the rest is its content ----

    private static readonly string[] BundleFileNames = [Shim.Core.BundleFiles.ExitStatus, Shim.Core.BundleFiles.Options, Shim.Core.BundleFiles.InitPid, Shim.Core.BundleFiles.Config];

    private static IEnumerable<(string, byte[])> BundleSeeds()
    {
        yield return ("exit", [0, .. "137 1700000000123456789\n"u8]);
        yield return ("options", [1, .. OptionsCodec.ToJson(new RuntimeOptions { BinaryName = "runc", Root = "/r", SystemdCgroup = true, IoUid = 1, IoGid = 2, ShimCgroup = "/s", CriuWorkPath = "/w" })]);
        yield return ("pid", [2, .. "4242\n"u8]);
        yield return ("config", [3, .. """{"ociVersion":"1.2.0","linux":{"namespaces":[{"type":"mount"},{"type":"pid","path":"/proc/1/ns/pid"}]}}"""u8]);
    }

    private static void BundleFiles(ReadOnlySpan<byte> input)
    {
        if (input.IsEmpty)
        {
            return;
        }
        string bundle = Fresh("bundle");
        int which = input[0] % BundleFileNames.Length;
        byte[] content = input[1..].ToArray();
        File.WriteAllBytes(Path.Combine(bundle, BundleFileNames[which]), content);
        switch (which)
        {
            case 0:
                // the delete action reports this after the shim died
                if (Never("ExitRecord.Read", () => ExitRecord.Read(bundle)) is { } record)
                {
                    ExitRecord.Write(bundle, record.Status, record.ExitedAt);
                    var again = ExitRecord.Read(bundle);
                    Check(again == record, $"exit record {record} does not round-trip ({again})");
                }
                break;
            case 1:
                // the delete action's runc binary and root
                var options = Never("OptionsCodec.FromJson", () => OptionsCodec.FromJson(content));
                Check(OptionsCodec.FromJson(OptionsCodec.ToJson(options)) == options, $"options {options} do not round-trip");
                break;
            case 2:
                _ = Expect("PidFile.Read", () => PidFile.Read(Path.Combine(bundle, Shim.Core.BundleFiles.InitPid)), ex => ex is ShimException { Kind: ErrorKind.Internal });
                break;
            default:
                _ = Never("Container.SpecSharesPidNamespace", () => Container.SpecSharesPidNamespace(bundle));
                break;
        }
    }

    // ---- runc's log ----

    private static IEnumerable<(string, byte[])> RuncLogSeeds()
    {
        yield return ("errors", """
            {"level":"info","msg":"starting","time":"2024-01-01T00:00:00Z"}
            {"level":"error","msg":"container \"c1\" does not exist","time":"2024-01-01T00:00:01Z"}
            {"level":"warning","msg":"w","nested":{"a":[1,2,{"b":null}]}}

            """u8.ToArray());
        yield return ("partial", "e\":\"x\"}\n{\"msg\":\"m\",\"level\":\"error\"}"u8.ToArray());
        yield return ("escapes", "{\"level\":\"error\",\"msg\":\"\\u00e9\\n\\\"q\\\"\"}\n"u8.ToArray());
    }

    private static void RuncLogTarget(ReadOnlySpan<byte> input)
    {
        byte[] text = input.ToArray();
        _ = Never("RuncLog.LastErrorIn", () => RuncLog.LastErrorIn(text));
        string file = Path.Combine(Scratch, "log.json");
        File.WriteAllBytes(file, text);
        _ = Never("RuncLog.LastError", () => RuncLog.LastError(file));
    }

    // ---- mountinfo ----

    private static IEnumerable<(string, byte[])> MountInfoSeeds()
    {
        yield return ("host", """
            22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
            23 22 0:5 / /proc rw,nosuid,nodev,noexec,relatime shared:2 - proc proc rw
            120 22 0:44 / /run/containerd/io.containerd.runtime.v2.task/default/c\0401/rootfs rw,relatime - overlay overlay rw,lowerdir=/a:/b
            121 120 0:45 / /run/x\134y\011z rw - tmpfs tmpfs rw

            """u8.ToArray());
    }

    private static void MountInfoTarget(ReadOnlySpan<byte> input)
    {
        string text = Text(input);
        var points = Never("MountInfo.ParseMountPoints", () => MountInfo.ParseMountPoints(text));
        foreach (string point in points)
        {
            _ = Never("MountInfo.IsAtOrUnder", () => MountInfo.IsAtOrUnder(point, "/run/containerd") | MountInfo.IsAtOrUnder(point, "/"));
        }
    }

    // ---- cgroups: /proc/<pid>/cgroup, then the files behind Stats (NUL-separated, one per file) ----

    private static readonly string[] V2Files =
    [
        "pids.current", "pids.max", "cpu.stat", "cpu.pressure", "memory.stat", "memory.current", "memory.max", "memory.peak", "memory.swap.current",
        "memory.swap.max", "memory.swap.peak", "memory.pressure", "memory.events", "io.stat", "io.pressure", "rdma.current", "rdma.max",
        "hugetlb.2MB.current", "hugetlb.2MB.max", "hugetlb.2MB.events",
    ];

    private static readonly (string Controller, string File)[] V1Files =
    [
        ("cpuacct", "cpuacct.usage"), ("cpuacct", "cpuacct.stat"), ("cpuacct", "cpuacct.usage_percpu"), ("cpu", "cpu.stat"), ("memory", "memory.stat"),
        ("memory", "memory.oom_control"), ("memory", "memory.usage_in_bytes"), ("memory", "memory.memsw.max_usage_in_bytes"), ("memory", "memory.kmem.tcp.limit_in_bytes"),
        ("pids", "pids.current"), ("pids", "pids.max"), ("blkio", "blkio.io_serviced_recursive"), ("blkio", "blkio.throttle.io_service_bytes"),
        ("blkio", "blkio.throttle.io_serviced"), ("hugetlb", "hugetlb.2MB.usage_in_bytes"), ("rdma", "rdma.current"), ("rdma", "rdma.max"), ("", "partitions"),
    ];

    private static IEnumerable<(string, byte[])> CgroupSeeds()
    {
        string proc = "12:memory:/c1\n11:cpu,cpuacct:/c1\n10:blkio:/c1\n9:pids:/c1\n8:hugetlb:/c1\n7:rdma:/c1\n1:name=systemd:/c1\n0::/c1\n";
        string[] v2 =
        [
            "3", "max", "usage_usec 100\nuser_usec 50\nsystem_usec 50\nnr_periods 1\nnr_throttled 0\nthrottled_usec 0",
            "some avg10=0.00 avg60=0.10 avg300=1.50 total=12345\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0",
            "anon 4096\nfile 8192\nkernel_stack 16384\npgfault 10\nworkingset_refault_anon 1", "65536", "max", "131072", "0", "max", "0",
            "some avg10=1 avg60=2 avg300=3 total=4", "low 0\nhigh 0\nmax 1\noom 1\noom_kill 1\noom_group_kill 0",
            "8:0 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n253:1 rbytes=1", "some avg10=0 avg60=0 avg300=0 total=0",
            "mlx4_0 hca_handle=2 hca_object=2000", "mlx4_0 hca_handle=max hca_object=max", "0", "max", "max 0",
        ];
        string[] v1 =
        [
            "123456", "user 10\nsystem 20", "1 2 3 4", "nr_periods 1\nnr_throttled 2\nthrottled_time 3", "cache 1\nrss 2\ntotal_cache 3\nhierarchical_memory_limit 9223372036854771712",
            "oom_kill_disable 0\nunder_oom 0\noom_kill 3", "4096", "8192", "-1", "5", "max", "8:0 Read 1\n8:0 Write 2\n8:0 Sync 3\n8:0 Async 0\n8:0 Total 3\nTotal 3",
            "8:0 Read 4096\n8:0 Total 4096", "8:0 Read 1", "2097152", "mlx4_0 hca_handle=1 hca_object=1", "mlx4_0 hca_handle=max hca_object=max",
            "major minor  #blocks  name\n\n   8        0  1048576 sda\n 253        1   524288 dm-1\n",
        ];
        yield return ("v2", Utf8(proc + "\0" + string.Join('\0', v2)));
        yield return ("v1", Utf8(proc + "\0" + string.Join('\0', v1)));
        yield return ("bad-proc", Utf8("0::/\nbroken line\n\0max"));
        // hugetlb directory names of every size class and broken ones, read as lines of the proc file
        yield return ("hugepage-names", Utf8("0::/c\nhugepages-64kB\nhugepages-1048576kB\nhugepages-xkB\nhugepages-2048\n\0max"));
    }

    private static void CgroupTarget(ReadOnlySpan<byte> input)
    {
        string[] parts = Fields(input, '\0');
        var proc = Expect("ProcCgroup.Parse", () => ProcCgroup.Parse(parts[0]), ex => ex is FormatException);
        foreach (string line in CgroupFiles.Lines(parts[0]))
        {
            _ = Never("CgroupFiles.ParseKeyValues", () => CgroupFiles.ParseKeyValues(line));
            _ = Never("RdmaFile.Parse", () => RdmaFile.Parse(line).ToList());
            foreach (string field in CgroupFiles.Fields(line))
            {
                _ = Never("HugePageSizes.FromDirectoryName", () => HugePageSizes.FromDirectoryName(field));
                _ = Never("CgroupFiles.TryParseUint", () => CgroupFiles.TryParseUint(field, out _));
            }
        }
        if (proc is null)
        {
            return;
        }

        // the files: a tree of this process's, with the input's contents; the cgroup paths as parsed
        // (only the first path component is kept, inside the tree: the parsed path may say "/../..")
        string root = Fresh("cgroup");
        string huge = Directory.CreateDirectory(Path.Combine(root, "hugepages", "hugepages-2048kB")).Parent!.FullName;
        string v2Dir = Directory.CreateDirectory(Path.Combine(root, "v2", "c")).FullName;
        for (int i = 0; i < V2Files.Length && i + 1 < parts.Length; i++)
        {
            File.WriteAllText(Path.Combine(v2Dir, V2Files[i]), parts[i + 1]);
        }
        string v1Root = Path.Combine(root, "v1");
        foreach (string controller in V1Files.Select(f => f.Controller).Distinct())
        {
            Directory.CreateDirectory(Path.Combine(v1Root, controller, "c"));
        }
        for (int i = 0; i < V1Files.Length && i + 1 < parts.Length; i++)
        {
            var (controller, file) = V1Files[i];
            File.WriteAllText(controller.Length == 0 ? Path.Combine(v1Root, file) : Path.Combine(v1Root, controller, "c", file), parts[i + 1]);
        }

        static bool Gone(Exception ex) => ex is ShimException { Kind: ErrorKind.NotFound };
        _ = Expect("CgroupV2.ReadMetrics", () => new CgroupV2("/c", Path.Combine(root, "v2"), huge).ReadMetrics(), Gone);
        var controllers = proc.Controllers.ToDictionary(kv => kv.Key, _ => "/c", StringComparer.Ordinal);
        if (controllers.Count > 0)
        {
            _ = Expect("CgroupV1.ReadMetrics", () => new CgroupV1(controllers, v1Root, v1Root, huge).ReadMetrics(), Gone);
        }
        _ = Expect("CgroupFactory.Load", () => CgroupFactory.Load(proc, CgroupMode.Unified, Path.Combine(root, "v2")), Gone);
    }
}
