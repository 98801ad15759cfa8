using System.Buffers.Binary;

namespace Shim.Ttrpc;

/// <summary>ttrpc frame types (header byte 8).</summary>
internal enum FrameType : byte
{
    Request = 0x01,
    Response = 0x02,
    Data = 0x03,
}

/// <summary>Frame flag bits (header byte 9); meaning depends on the frame type.</summary>
internal static class FrameFlags
{
    public const byte RemoteClosed = 0x01;
    public const byte RemoteOpen = 0x02;
    public const byte NoData = 0x04;
}

/// <summary>The decoded 10-byte frame header. <see cref="Type"/> may hold values outside <see cref="FrameType"/>.</summary>
internal readonly record struct FrameHeader(uint Length, uint StreamId, FrameType Type, byte Flags)
{
    /// <summary>True when the payload exceeds <see cref="FrameCodec.MaxPayload"/> and must be discarded.</summary>
    public bool IsOversized => Length > FrameCodec.MaxPayload;
}

/// <summary>
/// Encodes and decodes the ttrpc frame header: big-endian uint32 payload length, uint32 stream
/// id, uint8 type, uint8 flags.
/// </summary>
internal static class FrameCodec
{
    public const int HeaderSize = 10;

    /// <summary>Largest payload either side accepts (4 MiB in every ttrpc version).</summary>
    public const int MaxPayload = 4 << 20;

    /// <summary>Decodes a header from the first 10 bytes of <paramref name="source"/>; any length is reported as is.</summary>
    public static FrameHeader Read(ReadOnlySpan<byte> source)
    {
        if (source.Length < HeaderSize)
        {
            throw new ArgumentException($"a frame header needs {HeaderSize} bytes, got {source.Length}", nameof(source));
        }

        return new FrameHeader(
            BinaryPrimitives.ReadUInt32BigEndian(source),
            BinaryPrimitives.ReadUInt32BigEndian(source[4..]),
            (FrameType)source[8],
            source[9]);
    }

    /// <summary>Encodes <paramref name="header"/> into the first 10 bytes of <paramref name="destination"/>; refuses oversized lengths.</summary>
    public static void Write(Span<byte> destination, in FrameHeader header)
    {
        if (header.IsOversized)
        {
            throw new ArgumentOutOfRangeException(
                nameof(header), header.Length, $"frame payload exceeds the maximum of {MaxPayload} bytes");
        }

        if (destination.Length < HeaderSize)
        {
            throw new ArgumentException($"a frame header needs {HeaderSize} bytes, got {destination.Length}", nameof(destination));
        }

        BinaryPrimitives.WriteUInt32BigEndian(destination, header.Length);
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], header.StreamId);
        destination[8] = (byte)header.Type;
        destination[9] = header.Flags;
    }
}
