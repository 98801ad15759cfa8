using Google.Protobuf;
using Shim.Ttrpc.Wire;

namespace Shim.Ttrpc;

/// <summary>What the read loop does with a frame, decided from its header alone.</summary>
internal enum FrameAction
{
    /// <summary>Read the payload as a Request envelope and dispatch it.</summary>
    Dispatch,

    /// <summary>Skip the payload without answering (data frames, unknown types).</summary>
    Ignore,

    /// <summary>Skip the payload, then answer the stream with <see cref="FrameDecision.Code"/>.</summary>
    Reject,
}

/// <summary>The read loop's verdict on one frame header.</summary>
internal readonly record struct FrameDecision(FrameAction Action, StatusCode Code, string Message)
{
    public static readonly FrameDecision Dispatch = new(FrameAction.Dispatch, StatusCode.OK, "");
    public static readonly FrameDecision Ignore = new(FrameAction.Ignore, StatusCode.OK, "");
}

/// <summary>A decoded request ready to run (handler and typed message), or the status its caller gets instead.</summary>
internal readonly record struct ResolvedRequest(MethodHandler? Handler, IMessage? Message, StatusCode Code, string Error);

/// <summary>How a byte stream handed to <see cref="RequestDecoder.DecodeStream"/> ended.</summary>
internal enum StreamEnd
{
    /// <summary>At a frame boundary: the server waits for more (or sees a clean EOF).</summary>
    Clean,

    /// <summary>Inside a frame header: the server drops the connection at EOF.</summary>
    InsideHeader,

    /// <summary>Inside a payload (or a skipped one): the server drops the connection at EOF.</summary>
    InsidePayload,
}

/// <summary>Receives what <see cref="RequestDecoder.DecodeStream"/> found, in stream order.</summary>
internal interface IDecodeSink
{
    /// <summary>The server answers <paramref name="streamId"/> with this error status without running anything.</summary>
    void Rejected(uint streamId, StatusCode code, string message);

    /// <summary>The server would queue this call to its handler.</summary>
    void Dispatched(uint streamId, Request request, MethodHandler handler, IMessage message);
}

/// <summary>
/// The server's per-frame decisions as pure functions: header checks, envelope parse, handler lookup
/// and typed parse. <see cref="ServerConnection"/> runs them on socket reads; fuzzing and tests run
/// them on buffers through <see cref="DecodeStream"/>, so both see the same rules.
/// </summary>
internal static class RequestDecoder
{
    /// <summary>Status message for a Request envelope that does not parse.</summary>
    public const string MalformedEnvelope = "unmarshal request error: malformed ttrpc.Request";

    /// <summary>
    /// Decides a frame from its header, in the Go server's order: size, stream parity, type, stream
    /// reuse. Advances <paramref name="lastStreamId"/> only for a request that will be dispatched.
    /// </summary>
    public static FrameDecision Classify(in FrameHeader header, ref uint lastStreamId)
    {
        if (header.IsOversized)
        {
            // Skip rather than buffer it, then tell the sender on that stream (Go does the same).
            return new(FrameAction.Reject, StatusCode.ResourceExhausted,
                $"message length {header.Length} exceed maximum message size of {FrameCodec.MaxPayload}");
        }

        if (header.StreamId % 2 == 0)
        {
            return new(FrameAction.Reject, StatusCode.InvalidArgument, "StreamID must be odd for client initiated streams");
        }

        if (header.Type != FrameType.Request)
        {
            // Data frames belong to streaming calls, which this server does not offer; unknown
            // types are ignored for forward compatibility, as the Go server does.
            return FrameDecision.Ignore;
        }

        if (header.StreamId <= lastStreamId)
        {
            // ttrpc v1.2 rule: a client never reuses or lowers a stream id.
            return new(FrameAction.Reject, StatusCode.InvalidArgument, "StreamID cannot be re-used and must increment");
        }

        lastStreamId = header.StreamId;
        return FrameDecision.Dispatch;
    }

    /// <summary>Parses a Request envelope; null when it does not parse.</summary>
    public static Request? TryParseEnvelope(ReadOnlySpan<byte> payload)
    {
        try
        {
            return Request.Parser.ParseFrom(payload);
        }
        catch (Exception ex) when (ex is InvalidProtocolBufferException or ArgumentException or InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>Finds the handler and parses the typed message; on failure, the status the Go server would send.</summary>
    public static ResolvedRequest Resolve(TtrpcServiceRegistry registry, Request request)
    {
        var handler = registry.Find(request.Service, request.Method, out var notFound);
        if (handler is null)
        {
            return new(null, null, StatusCode.Unimplemented, notFound!);
        }

        try
        {
            return new(handler, handler.Parse(request.Payload.Span), StatusCode.OK, "");
        }
        catch (Exception ex) when (ex is InvalidProtocolBufferException or ArgumentException or InvalidOperationException)
        {
            return new(null, null, StatusCode.InvalidArgument, $"unmarshal request error: {ex.Message}");
        }
    }

    /// <summary>
    /// Decodes <paramref name="stream"/> as one connection's bytes, frame by frame, exactly as the
    /// server's read loop would, reporting each answer or dispatch to <paramref name="sink"/>.
    /// A frame whose payload is cut off is neither answered nor dispatched (the server hits EOF first).
    /// </summary>
    public static StreamEnd DecodeStream(ReadOnlySpan<byte> stream, TtrpcServiceRegistry registry, IDecodeSink sink)
    {
        uint lastStreamId = 0;
        while (true)
        {
            if (stream.IsEmpty)
            {
                return StreamEnd.Clean;
            }

            if (stream.Length < FrameCodec.HeaderSize)
            {
                return StreamEnd.InsideHeader;
            }

            var header = FrameCodec.Read(stream);
            stream = stream[FrameCodec.HeaderSize..];
            var decision = Classify(header, ref lastStreamId);
            if (stream.Length < header.Length)
            {
                return StreamEnd.InsidePayload;
            }

            var payload = stream[..(int)header.Length];
            stream = stream[(int)header.Length..];
            switch (decision.Action)
            {
                case FrameAction.Ignore:
                    continue;
                case FrameAction.Reject:
                    sink.Rejected(header.StreamId, decision.Code, decision.Message);
                    continue;
            }

            if (TryParseEnvelope(payload) is not { } request)
            {
                sink.Rejected(header.StreamId, StatusCode.InvalidArgument, MalformedEnvelope);
                continue;
            }

            var resolved = Resolve(registry, request);
            if (resolved.Handler is null)
            {
                sink.Rejected(header.StreamId, resolved.Code, resolved.Error);
                continue;
            }

            sink.Dispatched(header.StreamId, request, resolved.Handler, resolved.Message!);
        }
    }
}
