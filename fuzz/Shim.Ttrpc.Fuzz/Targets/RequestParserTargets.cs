using System.Text.Json;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Shim.Core.Errors;
using Shim.Core.Options;
using Shim.Core.Service;
using Shim.Core.Stdio;
using Shim.Os.Mounting;
using static Shim.Ttrpc.Fuzz.Targets.Fuzzing;

namespace Shim.Ttrpc.Fuzz.Targets;

/// <summary>
/// The parsers Create, Exec and Checkpoint run on what a client sends, one target each: runtime
/// options (every Any type the shim takes), CRI's TOML (config_body and a ConfigPath file), mount
/// options with uid/gid maps, targets and lowerdirs, stdio URIs, the exec process spec and the
/// checkpoint options. Malformed input must fail as InvalidArgument (FormatException inside the
/// mount code, which Create maps so); anything else is a finding.
/// </summary>
internal static class RequestParserTargets
{
    /// <summary>Type URLs the options targets choose from with the input's first byte.</summary>
    public static readonly string[] OptionTypes =
    [
        "containerd.runc.v1.Options", "types.googleapis.com/containerd.runc.v1.Options", "containerd.linux.runc.CreateOptions",
        "containerd.linux.runc.RuncOptions", "runtimeoptions.v1.Options", "io.containerd.runc.v1.Unknown", "",
    ];

    public static readonly string[] CheckpointTypes =
    [
        "containerd.runc.v1.CheckpointOptions", "containerd.linux.runc.CheckpointOptions", "types.containerd.io/x.CheckpointOptions", "",
    ];

    public static IEnumerable<ByteTarget> All =>
    [
        new("runtime-options", "src/Shim.Core/Options/OptionsCodec.cs, AnyOptions.cs, CriOptionsToml.cs", RuntimeOptionSeeds, RuntimeOptions),
        new("config-toml", "src/Shim.Core/Options/CriOptionsToml.cs, OptionsCodec.cs (ConfigPath)", TomlSeeds, ConfigToml),
        new("checkpoint-options", "src/Shim.Core/Options/CheckpointRequestOptions.cs", CheckpointSeeds, CheckpointOptions),
        new("exec-spec", "src/Shim.Core/Service/TaskService.Exec.cs (WithTerminal)", ExecSpecSeeds, ExecSpec),
        new("stdio-uri", "src/Shim.Core/Stdio/StdioUri.cs", StdioSeeds, StdioUriTarget),
        new("mount-options", "src/Shim.Os/Mounting/MountOptions.cs, IdMapping.cs, MountTarget.cs, OverlayLowerdirs.cs", MountSeeds, Mount),
    ];

    private static bool InvalidArgument(Exception ex) => ex is ShimException { Kind: ErrorKind.InvalidArgument };

    // ---- runtime options: byte 0 picks the type URL, the rest is the Any's value ----

    private static IEnumerable<(string, byte[])> RuntimeOptionSeeds()
    {
        yield return ("runc", [0, .. new Containerd.Runc.V1.Options { BinaryName = "runc", Root = "/run/containerd/runc", SystemdCgroup = true, IoUid = 1000, IoGid = 1000, ShimCgroup = "/shim", CriuWorkPath = "/tmp/criu", NoPivotRoot = true }.ToByteArray()]);
        yield return ("runc-url", [1, .. new Containerd.Runc.V1.Options { BinaryName = "/usr/bin/crun" }.ToByteArray()]);
        yield return ("create", [2, .. new Containerd.Linux.Runc.CreateOptions { NoPivotRoot = true, IoUid = 5, ShimCgroup = "x" }.ToByteArray()]);
        yield return ("legacy", [3, .. new Containerd.Linux.Runc.RuncOptions { Runtime = "runc", RuntimeRoot = "/r", SystemdCgroup = true }.ToByteArray()]);
        yield return ("cri-body", [4, .. new Runtimeoptions.V1.Options { TypeUrl = "x", ConfigBody = ByteString.CopyFromUtf8("BinaryName = \"runc\"\nSystemdCgroup = true\nIoUid = 7\n") }.ToByteArray()]);
        yield return ("cri-path", [4, .. new Runtimeoptions.V1.Options { ConfigPath = "/nonexistent/runc.toml" }.ToByteArray()]);
        yield return ("unknown", [5, 1, 2, 3]);
        yield return ("empty", [6]);
    }

    private static void RuntimeOptions(ReadOnlySpan<byte> input)
    {
        if (input.IsEmpty)
        {
            return;
        }
        var any = new Any { TypeUrl = OptionTypes[input[0] % OptionTypes.Length], Value = ByteString.CopyFrom(input[1..]) };
        DecodeOptions(any);
    }

    /// <summary>What Create does with the options before runc: decode, keep as JSON, read back, resolve the binary.</summary>
    internal static void DecodeOptions(Any any)
    {
        var options = Expect("OptionsCodec.Decode", () => OptionsCodec.Decode(any), InvalidArgument);
        if (options is null)
        {
            return;
        }
        var back = Never("OptionsCodec.FromJson(ToJson)", () => OptionsCodec.FromJson(OptionsCodec.ToJson(options)));
        Check(back == options, $"options.json does not round-trip: {options} came back as {back}");
        _ = Never("RuncRoot", () => options.RuncRoot("default"));
        _ = Expect("OptionsCodec.ResolveBinary", () => OptionsCodec.ResolveBinary(options.BinaryName),
            ex => ex is ShimException { Kind: ErrorKind.FailedPrecondition or ErrorKind.InvalidArgument });
    }

    // ---- CRI TOML: byte 0 even → config_body, odd → a ConfigPath file holding the rest ----

    private static IEnumerable<(string, byte[])> TomlSeeds()
    {
        string[] bodies =
        [
            "BinaryName = \"/usr/bin/runc\"\nRoot = \"/run/runc\"\nSystemdCgroup = true\nNoPivotRoot = false\nNoNewKeyring = true\nIoUid = 1000\nIoGid = 1000\nShimCgroup = \"/s\"\nCriuWorkPath = \"/w\"\n",
            "binary_name = 'runc'\nsystemd_cgroup = true\n[extra]\nx = 1\n",
            "\"BinaryName\" = \"runc\"\nio_uid = -1\n",
            "a = [1, [2, [3]]]\nb = { c = 1, d = { e = 2 } }\nt = 1979-05-27T07:32:00Z\nf = 1.5e3\n",
            "[[arr]]\nname = \"x\"\n[[arr]]\nname = \"y\"\n",
        ];
        for (int i = 0; i < bodies.Length; i++)
        {
            yield return ($"body{i}", [0, .. Utf8(bodies[i])]);
            yield return ($"path{i}", [1, .. Utf8(bodies[i])]);
        }
    }

    private static void ConfigToml(ReadOnlySpan<byte> input)
    {
        if (input.IsEmpty)
        {
            return;
        }
        var cri = new Runtimeoptions.V1.Options();
        if (input[0] % 2 == 0)
        {
            cri.ConfigBody = ByteString.CopyFrom(input[1..]);
        }
        else
        {
            string file = Path.Combine(Scratch, "config.toml");
            File.WriteAllBytes(file, input[1..].ToArray());
            cri.ConfigPath = file;
        }
        DecodeOptions(new Any { TypeUrl = "runtimeoptions.v1.Options", Value = cri.ToByteString() });
    }

    // ---- checkpoint options: byte 0 picks the type URL ----

    private static IEnumerable<(string, byte[])> CheckpointSeeds()
    {
        yield return ("v1", [0, .. new Containerd.Runc.V1.CheckpointOptions { Exit = true, OpenTcp = true, ExternalUnixSockets = true, Terminal = true, FileLocks = true, EmptyNamespaces = { "network", "ipc" }, CgroupsMode = "soft", ImagePath = "/i", WorkPath = "/w", ParentPath = "/p" }.ToByteArray()]);
        yield return ("legacy", [1, .. new Containerd.Linux.Runc.CheckpointOptions { Exit = true, EmptyNamespaces = { "uts" }, ImagePath = "/i", WorkPath = "/w" }.ToByteArray()]);
        yield return ("unknown", [2, 8, 1]);
        yield return ("empty", [3]);
    }

    private static void CheckpointOptions(ReadOnlySpan<byte> input)
    {
        if (input.IsEmpty)
        {
            return;
        }
        var any = new Any { TypeUrl = CheckpointTypes[input[0] % CheckpointTypes.Length], Value = ByteString.CopyFrom(input[1..]) };
        var options = Expect("CheckpointRequestOptions.Decode", () => CheckpointRequestOptions.Decode(any), InvalidArgument);
        if (options is not null)
        {
            // what the checkpoint does with the paths before runc (InitProcess.RunCheckpointAsync)
            _ = Expect("checkpoint work path", () => Shim.Core.Processes.InitProcess.CheckpointWorkParent(options.WorkPath.Length > 0 ? options.WorkPath : "/w"), InvalidArgument);
        }
    }

    // ---- the exec process spec JSON (byte 0: the request's terminal flag) ----

    private static IEnumerable<(string, byte[])> ExecSpecSeeds()
    {
        yield return ("sh", [1, .. """{"args":["sh"],"cwd":"/","env":["PATH=/bin"],"terminal":false,"user":{"uid":0,"gid":0}}"""u8]);
        yield return ("full", [0, .. """{"terminal":true,"consoleSize":{"height":24,"width":80},"user":{"uid":1,"gid":1,"additionalGids":[5]},"args":["a","b\u00e9"],"env":[],"cwd":"/x","capabilities":{"bounding":["CAP_KILL"]},"rlimits":[{"type":"RLIMIT_NOFILE","hard":1024,"soft":1024}],"noNewPrivileges":true,"apparmorProfile":"p","oomScoreAdj":-1,"selinuxLabel":"l"}"""u8]);
        yield return ("escapes", [1, .. """{"args":["\ud83d\ude00","\u0000","\\"],"cwd":"/"}"""u8]);
        yield return ("array", [0, .. "[1,2]"u8]);
    }

    private static void ExecSpec(ReadOnlySpan<byte> input)
    {
        if (input.IsEmpty)
        {
            return;
        }
        bool terminal = input[0] % 2 == 1;
        byte[] spec = input[1..].ToArray();
        var rewritten = Expect("TaskService.WithTerminal", () => TaskService.WithTerminal(spec, terminal, "e1"), InvalidArgument);
        if (rewritten is null)
        {
            return;
        }
        // runc reads what we wrote: it must be a JSON object whose one "terminal" says what the request said
        using var doc = Never("re-parsing the rewritten spec", () => JsonDocument.Parse(rewritten));
        Check(doc.RootElement.ValueKind == JsonValueKind.Object, "the rewritten spec is not an object");
        int terminals = doc.RootElement.EnumerateObject().Count(p => p.NameEquals("terminal"));
        Check(terminals == 1 && doc.RootElement.GetProperty("terminal").GetBoolean() == terminal, $"the rewritten spec has {terminals} terminal fields or the wrong value");
    }

    // ---- stdio URIs (stdin, stdout, stderr separated by newlines; byte 0: terminal) ----

    private static IEnumerable<(string, byte[])> StdioSeeds()
    {
        string[] uris =
        [
            "/run/containerd/fifo/1/c-stdin\n/run/containerd/fifo/1/c-stdout\n/run/containerd/fifo/1/c-stderr",
            "\nfile:///var/log/c%201.log\nfile:///var/log/c%201.log",
            "\nbinary:///usr/bin/logger?id=c1&ns=default&flag\nbinary:///usr/bin/logger?id=c1",
            "\nbinary-v2:///opt/log%3Fger?a=%2F&b==c&&=d#frag\n",
            "\nfifo:///x/out\nfifo:///x/err",
            "\nhttp://example/x\n",
        ];
        for (int i = 0; i < uris.Length; i++)
        {
            yield return ($"uri{i}", [(byte)(i % 2), .. Utf8(uris[i])]);
        }
    }

    private static void StdioUriTarget(ReadOnlySpan<byte> input)
    {
        if (input.IsEmpty)
        {
            return;
        }
        foreach (string uri in Fields(input[1..], '\n'))
        {
            if (Expect<(string Scheme, string Path)?>("StdioUri.Split", () => StdioUri.Split(uri), InvalidArgument) is not { } split)
            {
                continue;
            }
            int sep = uri.IndexOf("://", StringComparison.Ordinal);
            Check(sep >= 0 || split == ("", uri), $"bare path {uri} was changed to {split}");
            // the mode is chosen by the scheme as written (Go's url.Parse), whatever .NET's Uri makes of the rest
            Check(sep < 0 || split.Scheme.Length == 0 || string.Equals(split.Scheme, uri[..sep], StringComparison.OrdinalIgnoreCase),
                $"stdio {uri} was read with scheme {split.Scheme}");
        }
    }

    // ---- rootfs mounts: "type\nsource\ntarget\noption\noption..." ----

    private static IEnumerable<(string, byte[])> MountSeeds()
    {
        string[] mounts =
        [
            "overlay\noverlay\n\nindex=off\nworkdir=/s/2/work\nupperdir=/s/2/fs\nlowerdir=/s/snapshots/1/fs:/s/snapshots/12/fs",
            "bind\n/src\n/dst\nrbind\nro\nrprivate",
            "bind\n/src\nsub/../x\nbind\nuidmap=0:1000:65536\ngidmap=0:1000:65536",
            "overlay\noverlay\n\nlowerdir=/a/1:/a/2\nuidmap=0:100:10,10:200:1\ngidmap=0:100:11",
            "ext4\n/img\n\nloop\ndirect-io\nX-containerd.mkdir.path=/x\nremount\nshared",
            "tmpfs\ntmpfs\n/../..\nsize=64k\nmode=755\nnoexec\nnosuid\nnodev",
            "overlay\noverlay\n\n" + "lowerdir=" + string.Join(':', Enumerable.Range(0, 200).Select(i => $"/var/lib/containerd/snapshots/{i}/fs")),
        ];
        for (int i = 0; i < mounts.Length; i++)
        {
            yield return ($"mount{i}", Utf8(mounts[i]));
        }
    }

    private static bool Format(Exception ex) => ex is FormatException;

    private static void Mount(ReadOnlySpan<byte> input)
    {
        string[] fields = Fields(input, '\n');
        string target = fields.Length > 2 ? fields[2] : "";
        string[] options = fields.Length > 3 ? fields[3..] : [];
        var parsed = Expect("MountOptions.Parse", () => MountOptions.Parse(options), Format);
        if (parsed.UidMap is { } uid && parsed.GidMap is { } gid)
        {
            foreach (string map in new[] { uid, gid })
            {
                var mappings = Expect("IdMapping.ParseList", () => IdMapping.ParseList(map), Format);
                if (mappings is not null)
                {
                    string proc = IdMapping.ToProcFormat(mappings);
                    Check(proc.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length == mappings.Length, $"uid_map text of {map} has the wrong line count");
                }
            }
        }
        string? relative = Expect("MountTarget.Relative", () => MountTarget.Relative(target), Format);
        Check(relative is null || !relative.StartsWith('/'), $"target {target} stays absolute");
        var (index, dirs) = Never("OverlayLowerdirs.Find", () => OverlayLowerdirs.Find(options));
        Check(index < 0 || options[index].StartsWith("lowerdir=", StringComparison.Ordinal), "Find returned a non-lowerdir option");
        string? parent = Never("OverlayLowerdirs.CommonParent", () => OverlayLowerdirs.CommonParent(dirs));
        Check(parent is null || dirs.All(d => d.StartsWith(parent, StringComparison.Ordinal)), $"common parent {parent} is not a prefix of every layer");
        _ = Never("OverlayLowerdirs.TooLong", () => OverlayLowerdirs.TooLong(options, 4096));
        var (cwd, compacted) = Never("OverlayLowerdirs.Compact", () => OverlayLowerdirs.Compact(options));
        if (cwd is not null)
        {
            // the rewritten option goes last (a second lowerdir= before it stays as it was)
            var relativeDirs = compacted[^1]["lowerdir=".Length..].Split(':');
            Check(compacted[^1].StartsWith("lowerdir=", StringComparison.Ordinal) && relativeDirs.Select(d => cwd + "/" + d).SequenceEqual(dirs), "compacted lowerdirs do not name the same layers");
        }
        if (index >= 0 && parent is not null)
        {
            _ = Never("OverlayLowerdirs.WithDirs", () => OverlayLowerdirs.WithDirs(options, index, dirs.Select(d => "/idmapped" + d[parent.Length..])));
        }
    }
}
