using System.Buffers.Binary;
using Containerd.Task.V2;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Shim.Core.Service;
using Shim.Ttrpc.Wire;
using Shim.Os.Terminals;

namespace Shim.Ttrpc.Fuzz;

/// <summary>Builds ttrpc frames by hand (honest or not) and a valid sample request for every task method.</summary>
internal static class FrameBuilder
{
    /// <summary>Every method the task service registers, with its request type.</summary>
    public static readonly IReadOnlyList<string> Methods =
    [
        "State", "Create", "Start", "Delete", "Pids", "Kill", "CloseIO", "Wait", "Connect", "Shutdown",
        "Pause", "Resume", "Checkpoint", "Exec", "ResizePty", "Update", "Stats",
    ];

    /// <summary>Both service names the shim answers to.</summary>
    public static readonly IReadOnlyList<string> Services = [TaskService.TaskV2, TaskService.TaskV3];

    /// <summary>A 10-byte header with whatever fields the caller wants, lies included.</summary>
    public static byte[] Header(uint length, uint streamId, byte type, byte flags)
    {
        var bytes = new byte[FrameCodec.HeaderSize];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, length);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(4), streamId);
        bytes[8] = type;
        bytes[9] = flags;
        return bytes;
    }

    /// <summary>A Request envelope as the Go client encodes it.</summary>
    public static byte[] Envelope(string service, string method, ReadOnlySpan<byte> payload, long timeoutNano = 0, params (string Key, string Value)[] metadata)
    {
        var request = new Request { Service = service, Method = method, Payload = ByteString.CopyFrom(payload), TimeoutNano = timeoutNano };
        foreach (var (key, value) in metadata)
        {
            request.Metadata.Add(new KeyValue { Key = key, Value = value });
        }

        return request.ToByteArray();
    }

    /// <summary>A frame with an honest length.</summary>
    public static byte[] Frame(uint streamId, byte type, ReadOnlySpan<byte> payload, byte flags = 0) =>
        [.. Header((uint)payload.Length, streamId, type, flags), .. payload];

    /// <summary>A valid request frame.</summary>
    public static byte[] RequestFrame(uint streamId, string service, string method, IMessage message, long timeoutNano = 0) =>
        Frame(streamId, (byte)FrameType.Request, Envelope(service, method, message.ToByteArray(), timeoutNano));

    /// <summary>A plausible request message for <paramref name="method"/> naming container <paramref name="id"/>.</summary>
    public static IMessage SampleRequest(string method, string id, string execId = "") => method switch
    {
        "State" => new StateRequest { Id = id, ExecId = execId },
        "Create" => new CreateTaskRequest
        {
            // a bundle that cannot exist, even if a mutation lets Create through somewhere else
            Id = id, Bundle = "/nonexistent/fuzz-bundle", Stdout = "/nonexistent/fuzz-out", Terminal = false,
            Rootfs = { new Containerd.Types.Mount { Type = "bind", Source = "/nonexistent/src", Options = { "rbind", "ro" } } },
        },
        "Start" => new StartRequest { Id = id, ExecId = execId },
        "Delete" => new DeleteRequest { Id = id, ExecId = execId },
        "Pids" => new PidsRequest { Id = id },
        "Kill" => new KillRequest { Id = id, ExecId = execId, Signal = 15, All = true },
        "CloseIO" => new CloseIORequest { Id = id, ExecId = execId, Stdin = true },
        "Wait" => new WaitRequest { Id = id, ExecId = execId },
        "Connect" => new ConnectRequest { Id = id },
        "Shutdown" => new ShutdownRequest { Id = id, Now = true },
        "Pause" => new PauseRequest { Id = id },
        "Resume" => new ResumeRequest { Id = id },
        "Checkpoint" => new CheckpointTaskRequest { Id = id, Path = "/nonexistent/fuzz-checkpoint" },
        "Exec" => new ExecProcessRequest
        {
            Id = id, ExecId = execId.Length > 0 ? execId : "e1", Terminal = true,
            Spec = new Any { TypeUrl = "types.containerd.io/opencontainers/runtime-spec/1/Process", Value = ByteString.CopyFromUtf8("""{"args":["sh"],"cwd":"/"}""") },
        },
        "ResizePty" => new ResizePtyRequest { Id = id, ExecId = execId, Width = 80, Height = 24 },
        "Update" => new UpdateTaskRequest
        {
            Id = id,
            Resources = new Any { TypeUrl = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources", Value = ByteString.CopyFromUtf8("""{"cpu":{"shares":512}}""") },
            Annotations = { ["a"] = "b" },
        },
        "Stats" => new StatsRequest { Id = id },
        _ => new Empty(),
    };

    /// <summary>A small seed corpus: one valid frame per service and method, plus a few edge cases.</summary>
    public static IEnumerable<(string Name, byte[] Bytes)> Seeds()
    {
        foreach (string service in Services)
        {
            string version = service == TaskService.TaskV2 ? "v2" : "v3";
            foreach (string method in Methods)
            {
                yield return ($"{version}-{method}", RequestFrame(1, service, method, SampleRequest(method, "c1", method == "Exec" ? "e1" : "")));
            }
        }

        yield return ("two-calls", [.. RequestFrame(1, Services[0], "State", SampleRequest("State", "c1")), .. RequestFrame(3, Services[1], "Kill", SampleRequest("Kill", "c1"))]);
        yield return ("reused-stream", [.. RequestFrame(5, Services[0], "State", SampleRequest("State", "a")), .. RequestFrame(5, Services[0], "Pids", SampleRequest("Pids", "a"))]);
        yield return ("even-stream", RequestFrame(2, Services[0], "State", SampleRequest("State", "c1")));
        yield return ("data-frame", Frame(1, (byte)FrameType.Data, "abc"u8, FrameFlags.RemoteClosed));
        yield return ("oversized", Header(FrameCodec.MaxPayload + 1, 1, (byte)FrameType.Request, 0));
        yield return ("unknown-service", RequestFrame(1, "x.y.Z", "State", SampleRequest("State", "c1")));
        yield return ("timeout-metadata", Frame(1, (byte)FrameType.Request, Envelope(Services[0], "Wait", SampleRequest("Wait", "c1").ToByteArray(), 1_000_000, ("k", "v"), ("k", ""))));
    }
}
