using Shim.Os.Terminals;
namespace Shim.Core.Tests.Protos;

// The using directives sit inside the namespace and are global::-qualified so that types or namespaces
// declared in Shim.Core (an enclosing namespace) cannot shadow the generated protobuf types.
using global::Containerd.Events;
using global::Containerd.Task.V2;
using global::Google.Protobuf;
using global::Shim.Protos;
using Any = global::Google.Protobuf.WellKnownTypes.Any;
using BootstrapParams = global::Containerd.Runtime.Bootstrap.V1.BootstrapParams;
using BootstrapResult = global::Containerd.Runtime.Bootstrap.V1.BootstrapResult;
using Extension = global::Containerd.Runtime.Bootstrap.V1.Extension;
using LegacyCreateOptions = global::Containerd.Linux.Runc.CreateOptions;
using LogLevel = global::Containerd.Runtime.Bootstrap.V1.LogLevel;
using ProcessInfo = global::Containerd.Types.Task.ProcessInfo;
using RuncOptions = global::Containerd.Runc.V1.Options;
using RuncProcessDetails = global::Containerd.Runc.V1.ProcessDetails;
using TaskStatus = global::Containerd.Types.Task.Status;
using Timestamp = global::Google.Protobuf.WellKnownTypes.Timestamp;

/// <summary>
/// Checks that our hand-written .proto files produce containerd's wire format: field numbers, types,
/// type URLs and topics (PROTOCOL.md §3, §8).
/// </summary>
public sealed class WireFormatTests
{
    private static string Hex(ReadOnlySpan<byte> bytes) => Convert.ToHexString(bytes).ToLowerInvariant();

    [Fact]
    public void DeleteResponse_MatchesMeasuredGoShimBytes()
    {
        // PROTOCOL.md §3.5: measured bytes for pid 4242: 08 92 21 10 89 01 1a 0c 08 .. 10 ..
        var resp = new DeleteResponse
        {
            Pid = 4242,
            ExitStatus = 137,
            ExitedAt = new Timestamp { Seconds = 1_700_000_000, Nanos = 500_000_000 },
        };

        byte[] bytes = resp.ToByteArray();

        // 08 92 21 = pid 4242, 10 89 01 = exit_status 137, 1a 0c = exited_at (12 bytes), 08 = its seconds.
        Assert.Equal("0892211089011a0c08", Hex(bytes.AsSpan(0, 9)));
        Assert.Equal(8 + 12, bytes.Length);
        Assert.Equal(resp, DeleteResponse.Parser.ParseFrom(bytes));
    }

    [Fact]
    public void DeleteResponse_WithGoZeroTime_StillEmitsExitedAt()
    {
        var resp = new DeleteResponse { Pid = 0, ExitStatus = 137, ExitedAt = Timestamps.ZeroTime };

        byte[] bytes = resp.ToByteArray();

        // pid 0 is omitted (proto3 default); exit_status then exited_at (field 3, length-delimited).
        Assert.Equal(0x10, bytes[0]);
        Assert.Equal(0x1a, bytes[3]);
        var back = DeleteResponse.Parser.ParseFrom(bytes);
        Assert.Equal(Timestamps.GoZeroSeconds, back.ExitedAt.Seconds);
        Assert.Equal(DateTimeOffset.MinValue, back.ExitedAt.ToDateTimeOffset());
    }

    [Fact]
    public void Timestamps_ZeroTimeIsGoZeroTimeAndFreshInstance()
    {
        Assert.Equal(-62135596800L, Timestamps.ZeroTime.Seconds);
        Assert.Equal(0, Timestamps.ZeroTime.Nanos);
        Assert.NotSame(Timestamps.ZeroTime, Timestamps.ZeroTime);
        Assert.True(Timestamps.IsZero(Timestamps.ZeroTime));
        Assert.True(Timestamps.IsZero(null));
        Assert.True(Timestamps.IsZero(new Timestamp()));

        var t = new DateTimeOffset(2024, 5, 6, 7, 8, 9, TimeSpan.FromHours(2)).AddTicks(1234567);
        Timestamp ts = Timestamps.From(t);
        Assert.Equal(t.ToUnixTimeSeconds(), ts.Seconds);
        Assert.Equal(123456700, ts.Nanos);
        Assert.False(Timestamps.IsZero(ts));
    }

    [Fact]
    public void Pack_UsesBareFullNameAsTypeUrl()
    {
        var exit = new TaskExit { ContainerId = "c1", Id = "c1", Pid = 42, ExitStatus = 1, ExitedAt = Timestamps.ZeroTime };

        Any any = TypeUrls.Pack(exit);

        Assert.Equal("containerd.events.TaskExit", any.TypeUrl);
        Assert.Equal(TypeUrls.TaskExit, any.TypeUrl);
        Assert.Equal(exit.ToByteString(), any.Value);
        Assert.True(TypeUrls.TryUnpack<TaskExit>(any, out var back));
        Assert.Equal(exit, back);
        Assert.False(TypeUrls.TryUnpack<TaskOOM>(any, out _));
    }

    [Fact]
    public void TypeUrlConstants_MatchGeneratedDescriptors()
    {
        Assert.Equal(TypeUrls.TaskCreate, TaskCreate.Descriptor.FullName);
        Assert.Equal(TypeUrls.TaskStart, TaskStart.Descriptor.FullName);
        Assert.Equal(TypeUrls.TaskDelete, TaskDelete.Descriptor.FullName);
        Assert.Equal(TypeUrls.TaskExit, TaskExit.Descriptor.FullName);
        Assert.Equal(TypeUrls.TaskOOM, TaskOOM.Descriptor.FullName);
        Assert.Equal(TypeUrls.TaskExecAdded, TaskExecAdded.Descriptor.FullName);
        Assert.Equal(TypeUrls.TaskExecStarted, TaskExecStarted.Descriptor.FullName);
        Assert.Equal(TypeUrls.TaskPaused, TaskPaused.Descriptor.FullName);
        Assert.Equal(TypeUrls.TaskResumed, TaskResumed.Descriptor.FullName);
        Assert.Equal(TypeUrls.TaskCheckpointed, TaskCheckpointed.Descriptor.FullName);
        Assert.Equal(TypeUrls.RuncOptions, RuncOptions.Descriptor.FullName);
        Assert.Equal(TypeUrls.RuncCheckpointOptions, global::Containerd.Runc.V1.CheckpointOptions.Descriptor.FullName);
        Assert.Equal(TypeUrls.RuncProcessDetails, RuncProcessDetails.Descriptor.FullName);
        Assert.Equal(TypeUrls.LegacyRuncOptions, global::Containerd.Linux.Runc.RuncOptions.Descriptor.FullName);
        Assert.Equal(TypeUrls.LegacyCreateOptions, LegacyCreateOptions.Descriptor.FullName);
        Assert.Equal(TypeUrls.LegacyCheckpointOptions, global::Containerd.Linux.Runc.CheckpointOptions.Descriptor.FullName);
        Assert.Equal(TypeUrls.LegacyProcessDetails, global::Containerd.Linux.Runc.ProcessDetails.Descriptor.FullName);
        Assert.Equal(TypeUrls.RuntimeOptions, global::Runtimeoptions.V1.Options.Descriptor.FullName);
        Assert.Equal(TypeUrls.CgroupsV1Metrics, global::Containerd.Cgroups.V1.Stats.Metrics.Descriptor.FullName);
        Assert.Equal(TypeUrls.CgroupsV2Metrics, global::Containerd.Cgroups.V2.Stats.Metrics.Descriptor.FullName);
        Assert.Equal(TypeUrls.PodSandboxConfig, global::K8s.Cri.V1.PodSandboxConfig.Descriptor.FullName);
    }

    public static TheoryData<IMessage> PackedMessages() => new()
    {
        new TaskCreate(), new TaskStart(), new TaskDelete(), new TaskExit(), new TaskOOM(),
        new TaskExecAdded(), new TaskExecStarted(), new TaskPaused(), new TaskResumed(), new TaskCheckpointed(),
        new RuncProcessDetails { ExecId = "e1" },
        new global::Containerd.Cgroups.V1.Stats.Metrics(), new global::Containerd.Cgroups.V2.Stats.Metrics(),
        // not in NameOf's table: named by its descriptor
        new global::Containerd.Linux.Runc.ProcessDetails { ExecId = "e1" },
    };

    [Theory]
    [MemberData(nameof(PackedMessages))]
    public void NameOf_a_message_is_its_descriptors_full_name_and_Pack_uses_it(IMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        Assert.Equal(message.Descriptor.FullName, TypeUrls.NameOf(message));
        Any any = TypeUrls.Pack(message);
        Assert.Equal(message.Descriptor.FullName, any.TypeUrl);
        Assert.Equal(message.ToByteString(), any.Value);
    }

    [Fact]
    public void ServiceAndPackageNames_MatchMethodPaths()
    {
        Assert.Equal("containerd.task.v2.Task", ShimReflection.Descriptor.Services.Single().FullName);
        Assert.Equal(
            "containerd.services.events.ttrpc.v1.Events",
            global::Containerd.Services.Events.Ttrpc.V1.EventsReflection.Descriptor.Services.Single().FullName);
        Assert.Equal(
            "containerd.runtime.sandbox.v1.Sandbox",
            global::Containerd.Runtime.Sandbox.V1.SandboxReflection.Descriptor.Services.Single().FullName);
        Assert.Equal("containerd.v1.types.Status", global::Containerd.Types.Task.TaskReflection.Descriptor.EnumTypes.Single().FullName);
        Assert.Equal("containerd.types.Envelope", global::Containerd.Types.Envelope.Descriptor.FullName);
    }

    [Theory]
    [InlineData("type.googleapis.com/containerd.runc.v1.Options", "containerd.runc.v1.Options")]
    [InlineData("containerd.runc.v1.Options", "containerd.runc.v1.Options")]
    [InlineData("/containerd.runc.v1.Options", "containerd.runc.v1.Options")]
    [InlineData(
        "types.containerd.io/opencontainers/runtime-spec/1/Process",
        "types.containerd.io/opencontainers/runtime-spec/1/Process")]
    [InlineData(
        "types.containerd.io/opencontainers/runtime-spec/1/features/Features",
        "types.containerd.io/opencontainers/runtime-spec/1/features/Features")]
    public void NameOf_StripsOnlyGooglePrefixAndLeadingSlash(string url, string expected)
    {
        Assert.Equal(expected, TypeUrls.NameOf(url));
    }

    [Fact]
    public void Is_KeepsOciJsonUrlsWhole()
    {
        var spec = TypeUrls.PackRaw(TypeUrls.OciProcess, "{}"u8);

        Assert.True(TypeUrls.Is(spec, TypeUrls.OciProcess));
        Assert.False(TypeUrls.Is(spec, TypeUrls.OciLinuxResources));
        // protobuf's own rule would reduce the URL to "Process".
        Assert.Equal("Process", Any.GetTypeName(spec.TypeUrl));
        Assert.True(TypeUrls.Is(new Any { TypeUrl = "type.googleapis.com/containerd.runc.v1.Options" }, TypeUrls.RuncOptions));
        Assert.False(TypeUrls.Is(null, TypeUrls.RuncOptions));
    }

    [Fact]
    public void TopicOf_MapsEveryTaskEvent()
    {
        var cases = new (IMessage Event, string Topic)[]
        {
            (new TaskCreate(), "/tasks/create"),
            (new TaskStart(), "/tasks/start"),
            (new TaskDelete(), "/tasks/delete"),
            (new TaskExit(), "/tasks/exit"),
            (new TaskOOM(), "/tasks/oom"),
            (new TaskExecAdded(), "/tasks/exec-added"),
            (new TaskExecStarted(), "/tasks/exec-started"),
            (new TaskPaused(), "/tasks/paused"),
            (new TaskResumed(), "/tasks/resumed"),
            (new TaskCheckpointed(), "/tasks/checkpointed"),
        };

        foreach (var (evt, topic) in cases)
        {
            Assert.Equal(topic, EventTopics.TopicOf(evt));
        }

        Assert.Throws<ArgumentException>(() => EventTopics.TopicOf(new TaskIO()));
        Assert.Throws<ArgumentException>(() => EventTopics.TopicOf(new DeleteResponse()));
    }

    [Fact]
    public void CreateTaskRequest_OptionsIsField10()
    {
        var req = new CreateTaskRequest { Options = TypeUrls.Pack(new RuncOptions { BinaryName = "runc" }) };

        byte[] bytes = req.ToByteArray();

        Assert.Equal(0x52, bytes[0]); // (10 << 3) | 2
    }

    [Fact]
    public void CreateTaskRequest_FieldNumbers()
    {
        var req = new CreateTaskRequest
        {
            Id = "a",
            Bundle = "b",
            Rootfs = { new global::Containerd.Types.Mount { Type = "overlay", Source = "overlay", Options = { "ro" } } },
            Terminal = true,
            Stdin = "i",
            Stdout = "o",
            Stderr = "e",
            Checkpoint = "c",
            ParentCheckpoint = "p",
        };

        Assert.Equal(
            "0a0161" + "120162" + "1a" + "16" + "0a076f7665726c6179" + "12076f7665726c6179" + "2202726f"
            + "2001" + "2a0169" + "32016f" + "3a0165" + "420163" + "4a0170",
            Hex(req.ToByteArray()));
    }

    [Fact]
    public void StateResponse_FieldNumbers()
    {
        var resp = new StateResponse
        {
            Status = TaskStatus.Running,
            ExitStatus = 1,
            ExitedAt = new Timestamp { Seconds = 1 },
            ExecId = "x",
        };

        Assert.Equal("2002" + "4801" + "52020801" + "5a0178", Hex(resp.ToByteArray()));
    }

    [Fact]
    public void StatusEnum_HasContainerdValues()
    {
        Assert.Equal(0, (int)TaskStatus.Unknown);
        Assert.Equal(1, (int)TaskStatus.Created);
        Assert.Equal(2, (int)TaskStatus.Running);
        Assert.Equal(3, (int)TaskStatus.Stopped);
        Assert.Equal(4, (int)TaskStatus.Paused);
        Assert.Equal(5, (int)TaskStatus.Pausing);
    }

    [Fact]
    public void MiscFieldNumbers()
    {
        Assert.Equal("1801" + "2001", Hex(new KillRequest { Signal = 1, All = true }.ToByteArray()));
        Assert.Equal("1801" + "2002", Hex(new ResizePtyRequest { Width = 1, Height = 2 }.ToByteArray()));
        Assert.Equal("1801", Hex(new CloseIORequest { Stdin = true }.ToByteArray()));
        Assert.Equal("0801" + "1002" + "1a0176", Hex(new ConnectResponse { ShimPid = 1, TaskPid = 2, Version = "v" }.ToByteArray()));
        Assert.Equal("0805" + "12020801", Hex(new WaitResponse { ExitStatus = 5, ExitedAt = new Timestamp { Seconds = 1 } }.ToByteArray()));
        Assert.Equal("1a06" + "0a016b" + "120176", Hex(new UpdateTaskRequest { Annotations = { ["k"] = "v" } }.ToByteArray()));
        Assert.Equal("3a00", Hex(new ExecProcessRequest { Spec = new Any() }.ToByteArray()));

        var pids = new PidsResponse
        {
            Processes = { new ProcessInfo { Pid = 7, Info = TypeUrls.Pack(new RuncProcessDetails { ExecId = "e" }) } },
        };
        Assert.Equal(
            "0a" + "2c" + "0807" + "12" + "28" + "0a" + "21" + Hex("containerd.runc.v1.ProcessDetails"u8) + "1203" + "0a0165",
            Hex(pids.ToByteArray()));

        var exit = new TaskExit { ContainerId = "c", Id = "i", Pid = 3, ExitStatus = 4, ExitedAt = new Timestamp { Seconds = 1 } };
        Assert.Equal("0a0163" + "120169" + "1803" + "2004" + "2a020801", Hex(exit.ToByteArray()));

        var del = new TaskDelete { ContainerId = "c", Pid = 2, ExitStatus = 3, ExitedAt = new Timestamp { Seconds = 1 }, Id = "i" };
        Assert.Equal("0a0163" + "1002" + "1803" + "22020801" + "2a0169", Hex(del.ToByteArray()));

        var envelope = new global::Containerd.Services.Events.Ttrpc.V1.ForwardRequest
        {
            Envelope = new global::Containerd.Types.Envelope
            {
                Timestamp = new Timestamp { Seconds = 1 },
                Namespace = "n",
                Topic = "/t",
                Event = new Any(),
            },
        };
        Assert.Equal("0a" + "0d" + "0a020801" + "12016e" + "1a022f74" + "2200", Hex(envelope.ToByteArray()));
    }

    [Fact]
    public void BootstrapParams_NegativeLogLevelRoundTrips()
    {
        var p = new BootstrapParams
        {
            InstanceId = "id1",
            Namespace = "default",
            LogLevel = LogLevel.Debug,
            ContainerdTtrpcAddress = "/run/containerd/containerd.sock.ttrpc",
            Extensions = { new Extension { Value = TypeUrls.Pack(new RuncOptions { SystemdCgroup = true }) } },
        };

        byte[] bytes = p.ToByteArray();

        // log_level is field 3 (varint); -4 is sign-extended to a 10-byte varint.
        Assert.Contains("18fcffffffffffffffff01", Hex(bytes), StringComparison.Ordinal);
        var back = BootstrapParams.Parser.ParseFrom(bytes);
        Assert.Equal(LogLevel.Debug, back.LogLevel);
        Assert.Equal(-4, (int)back.LogLevel);
        Assert.False(back.HasSocketDir);
        Assert.Equal(p, back);
        Assert.True(TypeUrls.TryUnpack<RuncOptions>(back.Extensions[0].Value, out var opts));
        Assert.True(opts.SystemdCgroup);
    }

    [Fact]
    public void BootstrapParams_OptionalSocketDirDistinguishesEmpty()
    {
        var p = new BootstrapParams { SocketDir = "" };

        byte[] bytes = p.ToByteArray();

        Assert.Equal("4a00", Hex(bytes)); // field 9, present although empty
        Assert.True(BootstrapParams.Parser.ParseFrom(bytes).HasSocketDir);
    }

    [Fact]
    public void LogLevelEnum_HasContainerdValues()
    {
        Assert.Equal(0, (int)LogLevel.Info);
        Assert.Equal(-8, (int)LogLevel.Trace);
        Assert.Equal(-4, (int)LogLevel.Debug);
        Assert.Equal(4, (int)LogLevel.Warn);
        Assert.Equal(8, (int)LogLevel.Error);
        Assert.Equal(10, (int)LogLevel.Fatal);
        Assert.Equal(12, (int)LogLevel.Panic);
    }

    [Fact]
    public void BootstrapResult_Encoding()
    {
        var r = new BootstrapResult { Version = 3, Address = "unix:///s", Protocol = "ttrpc" };

        Assert.Equal("0803" + "1209" + Hex("unix:///s"u8) + "1a05" + Hex("ttrpc"u8), Hex(r.ToByteArray()));
    }

    [Fact]
    public void RuncOptions_RoundTripsAllFields()
    {
        var o = new RuncOptions
        {
            NoPivotRoot = true,
            NoNewKeyring = true,
            ShimCgroup = "/shim",
            IoUid = 1000,
            IoGid = 1001,
            BinaryName = "/usr/bin/runc",
            Root = "/run/containerd/runc",
            CriuPath = "/usr/sbin/criu",
            SystemdCgroup = true,
            CriuImagePath = "/img",
            CriuWorkPath = "/work",
            TaskApiAddress = "ttrpc+unix:///x",
            TaskApiVersion = 3,
        };

        byte[] bytes = TypeUrls.Pack(o).ToByteArray();
        var any = Any.Parser.ParseFrom(bytes);

        Assert.Equal("containerd.runc.v1.Options", any.TypeUrl);
        Assert.True(TypeUrls.TryUnpack<RuncOptions>(any, out var back));
        Assert.Equal(o, back);
        // criu_path is field 8 (1.6); systemd_cgroup field 9.
        Assert.Equal("420e" + Hex("/usr/sbin/criu"u8), Hex(new RuncOptions { CriuPath = "/usr/sbin/criu" }.ToByteArray()));
        Assert.Equal("4801", Hex(new RuncOptions { SystemdCgroup = true }.ToByteArray()));
        Assert.Equal("6803", Hex(new RuncOptions { TaskApiVersion = 3 }.ToByteArray()));
    }

    [Fact]
    public void CheckpointOptions_FieldNumbersDifferBetweenCurrentAndLegacy()
    {
        var current = new global::Containerd.Runc.V1.CheckpointOptions { ImagePath = "i", WorkPath = "w", EmptyNamespaces = { "network" } };
        var legacy = new global::Containerd.Linux.Runc.CheckpointOptions { ImagePath = "i", WorkPath = "w" };

        Assert.Equal("3207" + Hex("network"u8) + "420169" + "4a0177", Hex(current.ToByteArray()));
        Assert.Equal("420177" + "4a0169", Hex(legacy.ToByteArray()));
    }

    [Fact]
    public void CgroupMetrics_TopLevelFieldNumbers()
    {
        var v1 = new global::Containerd.Cgroups.V1.Stats.Metrics
        {
            Pids = new global::Containerd.Cgroups.V1.Stats.PidsStat { Current = 1 },
            MemoryOomControl = new global::Containerd.Cgroups.V1.Stats.MemoryOomControl { OomKill = 1 },
        };
        Assert.Equal("12020801" + "4a021801", Hex(v1.ToByteArray()));

        var v2 = new global::Containerd.Cgroups.V2.Stats.Metrics
        {
            Memory = new global::Containerd.Cgroups.V2.Stats.MemoryStat { Usage = 1 },
            MemoryEvents = new global::Containerd.Cgroups.V2.Stats.MemoryEvents { OomKill = 1 },
        };
        Assert.Equal("2203" + "800201" + "42022801", Hex(v2.ToByteArray()));
    }

    [Fact]
    public void LegacyStdinAny_AlsoParsesAsBootstrapParams_IdentityCheckNeeded()
    {
        // PROTOCOL.md §3.2: before 2.3 the stdin of `start` is a bare Any of the runtime options. Any's
        // fields 1 (type_url) and 2 (value) are both length-delimited, like BootstrapParams' instance_id
        // and namespace, so the bytes parse successfully as BootstrapParams. Only the identity check
        // (instance_id == -id and namespace == -namespace) tells the two apart.
        byte[] legacy = TypeUrls.Pack(new RuncOptions { ShimCgroup = "/shim", BinaryName = "runc" }).ToByteArray();

        var parsed = BootstrapParams.Parser.ParseFrom(legacy);

        Assert.Equal("containerd.runc.v1.Options", parsed.InstanceId);
        Assert.NotEqual("my-container", parsed.InstanceId);
        Assert.NotEqual("default", parsed.Namespace);

        // When the options bytes happen not to be valid UTF-8 (here io_uid = 1000 -> e8 07), reading them
        // as the `namespace` string fails instead: treat InvalidProtocolBufferException as "legacy" too.
        byte[] legacyBinary = TypeUrls.Pack(new RuncOptions { IoUid = 1000 }).ToByteArray();
        Assert.Throws<InvalidProtocolBufferException>(() => BootstrapParams.Parser.ParseFrom(legacyBinary));

        // Empty stdin parses too (all defaults), and also fails the identity check.
        var empty = BootstrapParams.Parser.ParseFrom(Array.Empty<byte>());
        Assert.Equal(string.Empty, empty.InstanceId);
        Assert.Equal(string.Empty, empty.Namespace);
    }
}
