using CsCheck;

namespace Shim.Ttrpc.Tests;

public sealed class FrameCodecTests
{
    private static readonly Gen<FrameHeader> AnyValidHeader =
        Gen.Select(Gen.UInt[0, FrameCodec.MaxPayload], Gen.UInt, Gen.Byte, Gen.Byte,
            (length, stream, type, flags) => new FrameHeader(length, stream, (FrameType)type, flags));

    [Fact]
    public void A_header_survives_a_write_and_read_round_trip()
    {
        AnyValidHeader.Sample(header =>
        {
            Span<byte> bytes = stackalloc byte[FrameCodec.HeaderSize];
            FrameCodec.Write(bytes, header);
            Assert.Equal(header, FrameCodec.Read(bytes));
            Assert.False(FrameCodec.Read(bytes).IsOversized);
        });
    }

    [Fact]
    public void The_header_is_big_endian_length_stream_type_flags()
    {
        var bytes = new byte[FrameCodec.HeaderSize];
        FrameCodec.Write(bytes, new FrameHeader(0x00010203, 0x0A0B0C0D, FrameType.Response, 0x05));
        Assert.Equal(new byte[] { 0, 1, 2, 3, 0x0A, 0x0B, 0x0C, 0x0D, 2, 5 }, bytes);
    }

    [Fact]
    public void Writing_a_length_over_4_MiB_is_refused()
    {
        Gen.UInt[FrameCodec.MaxPayload + 1, uint.MaxValue].Sample(length =>
        {
            var bytes = new byte[FrameCodec.HeaderSize];
            Assert.Throws<ArgumentOutOfRangeException>(
                () => FrameCodec.Write(bytes, new FrameHeader(length, 1, FrameType.Request, 0)));
        });
    }

    [Fact]
    public void Reading_a_length_over_4_MiB_reports_an_oversized_frame()
    {
        Gen.UInt[FrameCodec.MaxPayload + 1, uint.MaxValue].Sample(length =>
        {
            var bytes = new byte[FrameCodec.HeaderSize];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(bytes, length);
            var header = FrameCodec.Read(bytes);
            Assert.Equal(length, header.Length);
            Assert.True(header.IsOversized);
        });
    }

    [Fact]
    public void Exactly_4_MiB_is_still_allowed()
    {
        var bytes = new byte[FrameCodec.HeaderSize];
        FrameCodec.Write(bytes, new FrameHeader(4 << 20, 1, FrameType.Request, 0));
        Assert.False(FrameCodec.Read(bytes).IsOversized);
    }

    [Fact]
    public void A_short_buffer_is_rejected_rather_than_misread()
    {
        Assert.Throws<ArgumentException>(() => FrameCodec.Read(new byte[9]));
    }
}
