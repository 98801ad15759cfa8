using CsCheck;
using Containerd.Task.V2;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Shim.Ttrpc.Fuzz.Targets;

namespace Shim.Ttrpc.Fuzz.Tests;

/// <summary>Task requests for the live-container target: built from the fixture's ids, stdio and paths, then sometimes mutated.</summary>
internal static class ServiceGen
{
    private static readonly string Io = LiveFuzzService.IoDir;

    private static readonly Gen<string> Id = Gen.Frequency((8, Gen.OneOfConst("c1", "c1", "c2", "c3")), (1, Gen.OneOfConst("", "-h", "../c1", "c4")));

    private static readonly Gen<string> ExecId = Gen.Frequency((8, Gen.Int[0, 9].Select(n => $"e{n}")), (1, Gen.OneOfConst("", "-x", "e/1")));

    private static readonly Gen<string> Fixture = Gen.Frequency(
        (6, Gen.OneOfConst(LiveFuzzService.IoFixtures).Select(f => $"{Io}/{f}")),
        (1, Gen.OneOfConst($"{Io}/../io/fifo-out", $"{Io}/dir/", $"{Io}/fifo-out%00x", $"{Io}/a b", "/dev/null", "")));

    private static readonly Gen<string> Stdio = Gen.Frequency(
        (4, Gen.Const("")),
        (4, Fixture),
        (3, Gen.Select(Gen.OneOfConst("fifo://", "file://", "binary://", "binary-v2://", "FILE://", "a://", "://", "x y://", "http://"), Fixture,
            Gen.Frequency((3, Gen.Const("")), (2, Gen.Select(ParserGen.Word, ParserGen.Word, (k, v) => $"?{Uri.EscapeDataString(k)}={v}&{k}"))),
            (scheme, path, query) => scheme + path + query)));

    private static readonly Gen<string> WorkPath = Gen.OneOfConst("", $"{Io}/criu", $"{Io}/x/y/criu", "/", "a\0b", $"{Io}/plain/w", $"{Io}/dir");

    private static readonly Gen<Any?> RuntimeOptions = Gen.Frequency(
        (4, Gen.Const((Any?)null)),
        (3, Gen.Select(Gen.UInt[0, 70000], WorkPath, Gen.OneOfConst("", "runc", "/usr/bin/runc", "a/\0b", "nonexistent-runc"), (uid, work, binary) =>
            (Any?)new Any { TypeUrl = "containerd.runc.v1.Options", Value = new Containerd.Runc.V1.Options { IoUid = uid, IoGid = uid, CriuWorkPath = work, BinaryName = binary }.ToByteString() })),
        (3, ParserGen.Toml.Select(t => (Any?)new Any { TypeUrl = "runtimeoptions.v1.Options", Value = new Runtimeoptions.V1.Options { ConfigBody = ByteString.CopyFromUtf8(t) }.ToByteString() })),
        (1, Gen.OneOfConst(ServiceTarget.ConfigFile, $"{Io}/fifo-in", $"{Io}/dir", $"{Io}/missing", "/dev/zero", "")
            .Select(p => (Any?)new Any { TypeUrl = "runtimeoptions.v1.Options", Value = new Runtimeoptions.V1.Options { ConfigPath = p }.ToByteString() })),
        (1, Gen.Select(Gen.OneOfConst(RequestParserTargets.OptionTypes), Gen.Byte.Array[0, 32], (t, v) => (Any?)new Any { TypeUrl = t, Value = ByteString.CopyFrom(v) })));

    private static readonly Gen<Containerd.Types.Mount> Mount = Gen.Select(
        Gen.OneOfConst("overlay", "bind", "tmpfs", "none"), Gen.OneOfConst(Io, $"{Io}/dir", "overlay", "tmpfs"), ParserGen.MountTargetText, ParserGen.MountOption.Array[0, 6], Gen.Bool,
        (type, source, target, options, lowerInFixture) =>
        {
            var m = new Containerd.Types.Mount { Type = type, Source = source, Target = target };
            m.Options.AddRange(options);
            if (lowerInFixture)
            {
                m.Options.Add($"lowerdir={Io}/l1:{Io}/l2");
            }
            return m;
        });

    private static readonly Gen<CreateTaskRequest> Create = Gen.Select(
        Gen.Select(Id, Gen.Frequency((9, Gen.Const(true)), (1, Gen.Const(false))), (id, own) => (id, bundle: own && id.Length > 0 ? LiveFuzzService.BundleOf(id) : "/nonexistent/b")),
        Gen.Select(Stdio, Stdio, Stdio, Gen.Frequency((6, Gen.Const(false)), (1, Gen.Const(true)))),
        RuntimeOptions,
        Gen.Frequency((5, Gen.Const(Array.Empty<Containerd.Types.Mount>())), (2, Mount.Array[1, 3])),
        Gen.Frequency((8, Gen.Const("")), (1, Gen.Const($"{Io}/image"))),
        (ib, stdio, options, mounts, checkpoint) =>
        {
            var c = new CreateTaskRequest { Id = ib.id, Bundle = ib.bundle, Stdin = stdio.Item1, Stdout = stdio.Item2, Stderr = stdio.Item3, Terminal = stdio.Item4, Options = options, Checkpoint = checkpoint };
            c.Rootfs.AddRange(mounts);
            return c;
        });

    private static readonly Gen<ExecProcessRequest> Exec = Gen.Select(
        Id, ExecId, Gen.Select(Stdio, Stdio, Stdio, Gen.Bool), ParserGen.Json,
        (id, exec, stdio, spec) => new ExecProcessRequest
        {
            Id = id, ExecId = exec, Stdin = stdio.Item1, Stdout = stdio.Item2, Stderr = stdio.Item3, Terminal = stdio.Item4,
            Spec = new Any { TypeUrl = "types.containerd.io/opencontainers/runtime-spec/1/Process", Value = ByteString.CopyFrom(spec) },
        });

    private static readonly Gen<CheckpointTaskRequest> Checkpoint = Gen.Select(
        Id, Gen.OneOfConst($"{Io}/image", ""), WorkPath, Gen.Bool, Gen.OneOfConst(RequestParserTargets.CheckpointTypes),
        (id, path, work, exit, type) => new CheckpointTaskRequest
        {
            Id = id, Path = path,
            Options = new Any { TypeUrl = type, Value = new Containerd.Runc.V1.CheckpointOptions { WorkPath = work, Exit = exit, EmptyNamespaces = { "network" } }.ToByteString() },
        });

    private static readonly Gen<byte[]> Request = Gen.Frequency(
        (5, Create.Select(c => ServiceTarget.Encode("Create", c))),
        (5, Exec.Select(e => ServiceTarget.Encode("Exec", e))),
        (4, Gen.Select(Id, Gen.Frequency((1, Gen.Const("")), (3, ExecId)), (id, e) => ServiceTarget.Encode("Start", new StartRequest { Id = id, ExecId = e }))),
        (2, Gen.Select(Id, Gen.Byte.Array[0, 64], (id, r) => ServiceTarget.Encode("Update", new UpdateTaskRequest { Id = id, Resources = new Any { TypeUrl = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources", Value = ByteString.CopyFrom(r) } }))),
        (2, Checkpoint.Select(k => ServiceTarget.Encode("Checkpoint", k))),
        (2, Gen.Select(Id, Gen.Frequency((1, Gen.Const("")), (2, ExecId)), Gen.UInt[0, 70], Gen.Bool, (id, e, s, all) => ServiceTarget.Encode("Kill", new KillRequest { Id = id, ExecId = e, Signal = s, All = all }))),
        (2, Gen.Select(Id, Gen.Frequency((1, Gen.Const("")), (3, ExecId)), (id, e) => ServiceTarget.Encode("Delete", new DeleteRequest { Id = id, ExecId = e }))),
        (2, Gen.Select(Gen.OneOfConst("State", "Pids", "Pause", "Resume", "Stats", "Connect", "Shutdown", "CloseIO", "ResizePty"), Id, ExecId, Gen.UInt, (m, id, e, n) => ServiceTarget.Encode(m, m switch
        {
            "State" => new StateRequest { Id = id, ExecId = e },
            "Pids" => new PidsRequest { Id = id },
            "Pause" => new PauseRequest { Id = id },
            "Resume" => new ResumeRequest { Id = id },
            "Stats" => new StatsRequest { Id = id },
            "Connect" => new ConnectRequest { Id = id },
            "Shutdown" => new ShutdownRequest { Id = id },
            "CloseIO" => new CloseIORequest { Id = id, ExecId = e, Stdin = true },
            _ => (IMessage)new ResizePtyRequest { Id = id, ExecId = e, Width = n, Height = n >> 16 },
        }))));

    /// <summary>One request: built (mostly) or a seed, either maybe mutated at the byte level.</summary>
    public static readonly Gen<byte[]> Input = Gen.Frequency(
        (12, Request),
        (3, Gen.Select(Request, FrameGen.Mutations.Array[1, 3], Mutation.ApplyAll)),
        (2, Gen.Select(Gen.OneOfConst(ServiceTarget.Seeds().Select(s => s.Item2).ToArray()), FrameGen.Mutations.Array[0, 3], Mutation.ApplyAll)));
}
