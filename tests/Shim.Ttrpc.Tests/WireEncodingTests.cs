using CsCheck;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Shim.Ttrpc.Wire;

namespace Shim.Ttrpc.Tests;

public sealed class WireEncodingTests
{
    private static readonly Gen<string> Text = Gen.String[0, 40];

    [Fact]
    public void A_hand_encoded_request_parses_as_ttrpc_Request()
    {
        var metadata = Gen.Select(Text, Text, (k, v) => new KeyValuePair<string, string>(k, v)).Array[0, 4];
        Gen.Select(Text, Text, Text, Gen.Long[0, long.MaxValue], metadata).Sample((service, method, value, timeout, md) =>
        {
            var message = new StringValue { Value = value };
            Assert.True(WireEncoding.TryEncodeRequest(service, method, message, timeout, md, out var frame));
            try
            {
                frame.SetStreamId(7);
                var header = FrameCodec.Read(frame.Memory.Span);
                Assert.Equal(new FrameHeader((uint)(frame.Length - FrameCodec.HeaderSize), 7, FrameType.Request, 0), header);

                var request = Request.Parser.ParseFrom(frame.Memory.Span[FrameCodec.HeaderSize..]);
                Assert.Equal(service, request.Service);
                Assert.Equal(method, request.Method);
                Assert.Equal(timeout, request.TimeoutNano);
                Assert.Equal(message, StringValue.Parser.ParseFrom(request.Payload));
                Assert.Equal(md, request.Metadata.Select(kv => new KeyValuePair<string, string>(kv.Key, kv.Value)));
            }
            finally
            {
                frame.Return();
            }
        }, iter: 2000);
    }

    [Fact]
    public void A_hand_encoded_response_carries_an_OK_status_and_the_message()
    {
        Text.Sample(value =>
        {
            var message = new StringValue { Value = value };
            Assert.True(WireEncoding.TryEncodeResponse(5, message, out var frame));
            try
            {
                var response = Response.Parser.ParseFrom(frame.Memory.Span[FrameCodec.HeaderSize..]);
                Assert.NotNull(response.Status);
                Assert.Equal(0, response.Status.Code);
                Assert.Equal(message, StringValue.Parser.ParseFrom(response.Payload));
            }
            finally
            {
                frame.Return();
            }
        });
    }

    [Fact]
    public void An_empty_response_message_leaves_the_payload_empty()
    {
        Assert.True(WireEncoding.TryEncodeResponse(1, new Empty(), out var frame));
        var response = Response.Parser.ParseFrom(frame.Memory.Span[FrameCodec.HeaderSize..]);
        frame.Return();
        Assert.True(response.Payload.IsEmpty);
    }

    [Fact]
    public void A_status_frame_carries_code_and_message()
    {
        var frame = WireEncoding.EncodeStatus(9, StatusCode.NotFound, "container c1 not found");
        var header = FrameCodec.Read(frame.Memory.Span);
        var response = Response.Parser.ParseFrom(frame.Memory.Span[FrameCodec.HeaderSize..]);
        frame.Return();
        Assert.Equal(9u, header.StreamId);
        Assert.Equal(FrameType.Response, header.Type);
        Assert.Equal((int)StatusCode.NotFound, response.Status.Code);
        Assert.Equal("container c1 not found", response.Status.Message);
    }

    [Fact]
    public void A_request_over_4_MiB_is_not_encoded()
    {
        var huge = new BytesValue { Value = ByteString.CopyFrom(new byte[FrameCodec.MaxPayload]) };
        Assert.False(WireEncoding.TryEncodeRequest("s", "m", huge, 0, null, out _));
    }
}
