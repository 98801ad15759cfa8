using CsCheck;
using Google.Protobuf;

namespace Shim.Ttrpc.Fuzz.Tests;

/// <summary>
/// Generators of what a client might send on one connection: mostly valid task requests, then
/// mutated at every layer (typed payload, Request envelope, frame header, whole byte stream), plus
/// some plain random bytes.
/// </summary>
internal static class FrameGen
{
    /// <summary>One connection's bytes.</summary>
    public static readonly Gen<byte[]> Input;

    private static readonly Gen<string> Id = Gen.Frequency(
        (5, Gen.Const("c1")),
        (2, Gen.Const("")),
        (3, Gen.Char.AlphaNumeric.Array[1, 12].Select(c => new string(c))),
        (1, Gen.Char.Array[0, 24].Select(c => new string(c))));

    private static readonly Gen<string> Method = Gen.Frequency(
        (12, Gen.OneOfConst([.. FrameBuilder.Methods])),
        (1, Gen.Char.AlphaNumeric.Array[0, 12].Select(c => new string(c))));

    private static readonly Gen<string> Service = Gen.Frequency(
        (6, Gen.OneOfConst([.. FrameBuilder.Services])),
        (1, Gen.OneOfConst("", "containerd.task.v1.Task", "containerd.services.events.ttrpc.v1.Events")),
        (1, Gen.Char.AlphaNumeric.Array[0, 30].Select(c => new string(c))));

    /// <summary>A byte-level change; positions are taken modulo the length at the time it applies.</summary>
    internal static readonly Gen<Mutation> Mutations = Gen.Select(Gen.Int[0, 8], Gen.Int[0, int.MaxValue], Gen.Int[0, int.MaxValue], Gen.Byte.Array[1, 8],
        (kind, a, b, bytes) => new Mutation(kind, a, b, bytes));

    /// <summary>The typed message of a task request, valid or mutated; rarely very large.</summary>
    private static readonly Gen<byte[]> TypedPayload = Gen.Frequency(
        (1200, Gen.Select(Method, Id, Id, (m, id, exec) => FrameBuilder.SampleRequest(m, id, exec).ToByteArray())),
        (600, Gen.Select(Method, Id, Mutations.Array[1, 4], (m, id, ms) => Mutation.ApplyAll(FrameBuilder.SampleRequest(m, id).ToByteArray(), ms))),
        (160, Gen.Byte.Array[0, 48]),
        (1, Gen.Int[64 << 10, 256 << 10].Select(n => new Containerd.Task.V2.StateRequest { Id = new string('x', n) }.ToByteArray())));

    private static readonly Gen<(string Key, string Value)[]> Metadata = Gen.Frequency(
        (6, Gen.Const(Array.Empty<(string, string)>())),
        (1, Gen.Select(Id, Id).Array[1, 3]));

    private static readonly Gen<long> Timeout = Gen.Frequency(
        (6, Gen.Const(0L)),
        (2, Gen.Long[1, 30_000_000_000]),
        (1, Gen.Long));

    /// <summary>A Request envelope: valid (with a maybe-broken payload), mutated, or random.</summary>
    private static readonly Gen<byte[]> Envelope = Gen.Frequency(
        (14, Gen.Select(Service, Method, TypedPayload, Timeout, Metadata,
            (s, m, p, t, md) => FrameBuilder.Envelope(s, m, p, t, md))),
        // a Create the live server runs: in its own bundle, without mounts or stdio
        (1, Gen.Select(Service, Gen.OneOfConst(LiveFuzzService.LiveIds), (s, id) => FrameBuilder.Envelope(s, "Create", LiveFuzzService.LiveCreate(id).ToByteArray()))),
        // an Exec into one of those, under an exec id of its own: most fuzzed Execs name "e1" in c1, which
        // is taken after the first one, or reach c1 after a fuzzed Kill stopped it
        (1, Gen.Select(Service, Gen.OneOfConst(LiveFuzzService.LiveIds), Gen.Int[0, 99_999],
            (s, id, n) => FrameBuilder.Envelope(s, "Exec", FrameBuilder.SampleRequest("Exec", id, $"x{n}").ToByteArray()))),
        (4, Gen.Select(Service, Method, TypedPayload, Mutations.Array[1, 4],
            (s, m, p, ms) => Mutation.ApplyAll(FrameBuilder.Envelope(s, m, p), ms))),
        (2, Gen.Byte.Array[0, 64]));

    private static readonly Gen<FrameSpec> Frame = Gen.Select(
        Gen.Frequency((16, Gen.Const(StreamKind.Next)), (1, Gen.Const(StreamKind.Even)), (1, Gen.Const(StreamKind.Zero)),
            (1, Gen.Const(StreamKind.Reuse)), (1, Gen.Const(StreamKind.Max)), (1, Gen.Const(StreamKind.Random))),
        Gen.Frequency((20, Gen.Const((byte)FrameType.Request)), (1, Gen.Const((byte)FrameType.Response)), (1, Gen.Const((byte)FrameType.Data)), (1, Gen.Byte)),
        Gen.Frequency((12, Gen.Const((byte)0)), (1, Gen.Byte)),
        Gen.Frequency((24, Gen.Const(LengthKind.Honest)), (4, Gen.Const(LengthKind.Lie)), (1, Gen.Const(LengthKind.Oversized)),
            (1, Gen.Const(LengthKind.Limit)), (1, Gen.Const(LengthKind.Random))),
        Gen.Select(Gen.Int[-8, 8], Gen.UInt),
        Envelope,
        (stream, type, flags, length, lie, payload) => new FrameSpec(stream, type, flags, length, lie.Item1, lie.Item2, payload));

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1810:Initialize reference type static fields inline", Justification = "Input is built from Frame and Mutations, declared above: the constructor runs after them whatever the field order")]
    static FrameGen()
    {
        var frames = Frame.Array[1, 5].Select(Concat);
        Input = Gen.Frequency(
            (14, frames),
            (5, Gen.Select(frames, Mutations.Array[1, 3], Mutation.ApplyAll)),
            (1, Gen.Byte.Array[0, 128]));
    }

    /// <summary>How a test failure prints an input: hex, so it can be replayed with fuzz/run.sh --replay.</summary>
    public static string Hex(byte[] input) => $"{input.Length} bytes: {Convert.ToHexString(input)}";

    private static byte[] Concat(FrameSpec[] frames)
    {
        var output = new List<byte>();
        uint next = 1, last = 1;
        foreach (var f in frames)
        {
            uint streamId = f.Stream switch
            {
                StreamKind.Next => next,
                StreamKind.Even => (f.Random & ~1u) % 1000,
                StreamKind.Zero => 0,
                StreamKind.Reuse => last,
                StreamKind.Max => uint.MaxValue,
                _ => f.Random,
            };
            if (f.Stream == StreamKind.Next)
            {
                next = unchecked(next + 2);
            }

            last = streamId;
            uint length = f.Length switch
            {
                LengthKind.Honest => (uint)f.Payload.Length,
                LengthKind.Lie => (uint)Math.Max(0, f.Payload.Length + f.Lie),
                LengthKind.Oversized => FrameCodec.MaxPayload + 1 + (f.Random % 0x7FFF_0000u),
                LengthKind.Limit => FrameCodec.MaxPayload,
                _ => f.Random % (1u << 16),
            };
            output.AddRange(FrameBuilder.Header(length, streamId, f.Type, f.Flags));
            output.AddRange(f.Payload);
        }

        return [.. output];
    }

    private enum StreamKind
    {
        Next,
        Even,
        Zero,
        Reuse,
        Max,
        Random,
    }

    private enum LengthKind
    {
        Honest,
        Lie,
        Oversized,
        Limit,
        Random,
    }

    private sealed record FrameSpec(StreamKind Stream, byte Type, byte Flags, LengthKind Length, int Lie, uint Random, byte[] Payload);
}
