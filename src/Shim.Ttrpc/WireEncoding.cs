using System.Buffers;
using System.Text;
using Google.Protobuf;
using Shim.Ttrpc.Wire;

namespace Shim.Ttrpc;

/// <summary>A complete frame (header + payload) in a buffer rented from <see cref="ArrayPool{T}.Shared"/>.</summary>
internal readonly struct OutgoingFrame
{
    public OutgoingFrame(byte[] buffer, int length)
    {
        Buffer = buffer;
        Length = length;
    }

    public byte[] Buffer { get; }

    public int Length { get; }

    public ReadOnlyMemory<byte> Memory => Buffer.AsMemory(0, Length);

    /// <summary>Sets the stream id once it is known (the client allocates ids under its write lock).</summary>
    public void SetStreamId(uint streamId) =>
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(Buffer.AsSpan(4), streamId);

    public void Return() => ArrayPool<byte>.Shared.Return(Buffer);
}

/// <summary>
/// Writes the ttrpc Request/Response envelopes by hand straight into pooled frame buffers, so
/// the inner message is serialized once (no intermediate ByteString copy).
/// </summary>
internal static class WireEncoding
{
    // Field tags (field number << 3 | wire type); every field here is < 16, so one byte each.
    private const byte TagRequestService = (1 << 3) | 2;
    private const byte TagRequestMethod = (2 << 3) | 2;
    private const byte TagRequestPayload = (3 << 3) | 2;
    private const byte TagRequestTimeout = (4 << 3) | 0;
    private const byte TagRequestMetadata = (5 << 3) | 2;
    private const byte TagKeyValueKey = (1 << 3) | 2;
    private const byte TagKeyValueValue = (2 << 3) | 2;
    private const byte TagResponseStatus = (1 << 3) | 2;
    private const byte TagResponsePayload = (2 << 3) | 2;

    /// <summary>Longest status message sent; keeps an error frame far below the frame limit.</summary>
    private const int MaxStatusMessageChars = 16 * 1024;

    /// <summary>
    /// Frames a successful Response. Like the Go server it sends an explicit OK status (older
    /// clients are happiest with one). Returns false when the frame would exceed the limit.
    /// </summary>
    public static bool TryEncodeResponse(uint streamId, IMessage response, out OutgoingFrame frame)
    {
        int messageSize = response.CalculateSize();
        long envelope = 2 + FieldSize(messageSize);   // 2 = status tag + zero length
        if (envelope > FrameCodec.MaxPayload)
        {
            frame = default;
            return false;
        }

        var buffer = Rent(streamId, FrameType.Response, (int)envelope);
        var span = buffer.AsSpan(FrameCodec.HeaderSize, (int)envelope);
        span[0] = TagResponseStatus;
        span[1] = 0;
        int pos = 2;
        if (messageSize > 0)
        {
            pos += WriteLengthPrefix(span[pos..], TagResponsePayload, messageSize);
            response.WriteTo(span.Slice(pos, messageSize));
        }

        frame = new OutgoingFrame(buffer, FrameCodec.HeaderSize + (int)envelope);
        return true;
    }

    /// <summary>Frames an error Response carrying <paramref name="code"/> and <paramref name="message"/>.</summary>
    public static OutgoingFrame EncodeStatus(uint streamId, StatusCode code, string message)
    {
        if (message.Length > MaxStatusMessageChars)
        {
            message = message[..MaxStatusMessageChars];
        }

        var status = new Status { Code = (int)code, Message = message };
        int statusSize = status.CalculateSize();
        int envelope = (int)FieldSize(statusSize);
        var buffer = Rent(streamId, FrameType.Response, envelope);
        var span = buffer.AsSpan(FrameCodec.HeaderSize, envelope);
        int pos = WriteLengthPrefix(span, TagResponseStatus, statusSize);
        status.WriteTo(span.Slice(pos, statusSize));
        return new OutgoingFrame(buffer, FrameCodec.HeaderSize + envelope);
    }

    /// <summary>
    /// Frames a Request with stream id 0 (set it with <see cref="OutgoingFrame.SetStreamId"/>).
    /// Returns false when the frame would exceed the limit.
    /// </summary>
    public static bool TryEncodeRequest(
        string service,
        string method,
        IMessage request,
        long timeoutNano,
        IReadOnlyList<KeyValuePair<string, string>>? metadata,
        out OutgoingFrame frame)
    {
        int messageSize = request.CalculateSize();
        long envelope = StringFieldSize(service)
            + StringFieldSize(method)
            + FieldSize(messageSize)
            + (timeoutNano > 0 ? 1 + CodedOutputStream.ComputeInt64Size(timeoutNano) : 0);
        if (metadata is not null)
        {
            foreach (var (key, value) in metadata)
            {
                // A repeated element is written even when empty, unlike an optional field.
                int size = KeyValueSize(key, value);
                envelope += 1 + CodedOutputStream.ComputeLengthSize(size) + size;
            }
        }

        if (envelope > FrameCodec.MaxPayload)
        {
            frame = default;
            return false;
        }

        var buffer = Rent(0, FrameType.Request, (int)envelope);
        var span = buffer.AsSpan(FrameCodec.HeaderSize, (int)envelope);
        int pos = WriteString(span, TagRequestService, service);
        pos += WriteString(span[pos..], TagRequestMethod, method);
        if (messageSize > 0)
        {
            pos += WriteLengthPrefix(span[pos..], TagRequestPayload, messageSize);
            request.WriteTo(span.Slice(pos, messageSize));
            pos += messageSize;
        }

        if (timeoutNano > 0)
        {
            span[pos++] = TagRequestTimeout;
            pos += WriteVarint(span[pos..], (ulong)timeoutNano);
        }

        if (metadata is not null)
        {
            foreach (var (key, value) in metadata)
            {
                pos += WriteLengthPrefix(span[pos..], TagRequestMetadata, KeyValueSize(key, value));
                pos += WriteString(span[pos..], TagKeyValueKey, key);
                pos += WriteString(span[pos..], TagKeyValueValue, value);
            }
        }

        System.Diagnostics.Debug.Assert(pos == span.Length, "request envelope size mismatch");
        frame = new OutgoingFrame(buffer, FrameCodec.HeaderSize + (int)envelope);
        return true;
    }

    /// <summary>Size of a length-delimited field (tag + length + body), 0 for an empty body (proto3 omits it).</summary>
    private static long FieldSize(int bodySize) =>
        bodySize == 0 ? 0 : 1L + CodedOutputStream.ComputeLengthSize(bodySize) + bodySize;

    private static int KeyValueSize(string key, string value) => StringFieldSize(key) + StringFieldSize(value);

    /// <summary>Size of a string field as <see cref="WriteString"/> writes it (same UTF-8 encoder, so the sizes agree).</summary>
    private static int StringFieldSize(string value)
    {
        if (value.Length == 0)
        {
            return 0;
        }

        int byteCount = Encoding.UTF8.GetByteCount(value);
        return 1 + CodedOutputStream.ComputeLengthSize(byteCount) + byteCount;
    }

    private static byte[] Rent(uint streamId, FrameType type, int payloadLength)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(FrameCodec.HeaderSize + payloadLength);
        FrameCodec.Write(buffer, new FrameHeader((uint)payloadLength, streamId, type, 0));
        return buffer;
    }

    /// <summary>Writes a string field; an empty string is omitted as proto3 does.</summary>
    private static int WriteString(Span<byte> destination, byte tag, string value)
    {
        if (value.Length == 0)
        {
            return 0;
        }

        int byteCount = Encoding.UTF8.GetByteCount(value);
        int pos = WriteLengthPrefix(destination, tag, byteCount);
        return pos + Encoding.UTF8.GetBytes(value, destination[pos..]);
    }

    private static int WriteLengthPrefix(Span<byte> destination, byte tag, int length)
    {
        destination[0] = tag;
        return 1 + WriteVarint(destination[1..], (uint)length);
    }

    private static int WriteVarint(Span<byte> destination, ulong value)
    {
        int i = 0;
        while (value >= 0x80)
        {
            destination[i++] = (byte)(value | 0x80);
            value >>= 7;
        }

        destination[i++] = (byte)value;
        return i;
    }
}
