using Google.Protobuf;
using Shim.Core.Errors;
using Shim.Runc;
using Shim.Ttrpc;

namespace Shim.Core.Tests;

public class StatusMappingTests
{
    [Theory]
    [InlineData(ErrorKind.NotFound, StatusCode.NotFound)]
    [InlineData(ErrorKind.AlreadyExists, StatusCode.AlreadyExists)]
    [InlineData(ErrorKind.FailedPrecondition, StatusCode.FailedPrecondition)]
    [InlineData(ErrorKind.InvalidArgument, StatusCode.InvalidArgument)]
    [InlineData(ErrorKind.NotImplemented, StatusCode.Unimplemented)]
    [InlineData(ErrorKind.Unavailable, StatusCode.Unavailable)]
    [InlineData(ErrorKind.Internal, StatusCode.Internal)]
    [InlineData(ErrorKind.Unknown, StatusCode.Unknown)]
    public void Each_error_kind_has_its_grpc_code(ErrorKind kind, StatusCode code)
    {
        Assert.Equal((code, "what failed"), StatusMapping.ToStatus(new ShimException(kind, "what failed")));
    }

    [Fact]
    public void Runc_failures_keep_runcs_text_and_gone_containers_are_not_found()
    {
        var (code, message) = StatusMapping.ToStatus(new RuncException("/usr/sbin/runc", "kill", 1, "container not running"));
        Assert.Equal(StatusCode.NotFound, code);
        Assert.Contains("runc kill failed: container not running", message, StringComparison.Ordinal);
        Assert.Equal(StatusCode.Unknown, StatusMapping.ToStatus(new RuncException("/usr/sbin/runc", "create", 1, "bad config")).Code);
    }

    [Fact]
    public void Runcs_own_failed_prefix_is_not_repeated()
    {
        var ex = new RuncException("/usr/sbin/runc", "create", 1, "runc create failed: unexpected EOF");
        Assert.Equal("runc create failed: unexpected EOF", ex.Message);
        Assert.Equal("runc create failed: unexpected EOF", ex.RuncMessage);
    }

    [Fact]
    public void A_runtime_binary_that_cannot_be_executed_is_a_failed_precondition()
    {
        var (code, message) = StatusMapping.ToStatus(RuncException.NotStarted("/nonexistent/runc", "create", "No such file or directory (ENOENT)"));
        Assert.Equal(StatusCode.FailedPrecondition, code);
        Assert.Equal("runc create failed: cannot execute runtime binary /nonexistent/runc: No such file or directory (ENOENT)", message);
    }

    [Fact]
    public void Malformed_protobuf_is_an_invalid_argument()
    {
        var bad = Assert.ThrowsAny<InvalidProtocolBufferException>(() => Google.Protobuf.WellKnownTypes.Duration.Parser.ParseFrom([0xff, 0xff, 0xff]));
        Assert.Equal(StatusCode.InvalidArgument, StatusMapping.ToStatus(bad).Code);
    }
}
