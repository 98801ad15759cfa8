using Containerd.Task.V2;
using Google.Protobuf;
using Shim.Core.Errors;
using Shim.Core.Service;
using Shim.Protos;

namespace Shim.Core.Tests.Service;

public sealed class IdentifierTests : TaskServiceTestBase
{
    [Theory]
    [InlineData("c1")]
    [InlineData("a")]
    [InlineData("web-1.sidecar_2")]
    [InlineData("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")] // CRI and Docker ids
    public void Containerd_ids_are_valid(string id) => Assert.Null(Identifiers.Problem(id));

    [Theory]
    [InlineData("", "must not be empty")]
    [InlineData("-h", "must match")]
    [InlineData("--root=/tmp", "must match")]
    [InlineData("../x", "must match")]
    [InlineData("a/b", "must match")]
    [InlineData(".hidden", "must match")]
    [InlineData("trailing-", "must match")]
    [InlineData("two..dots", "must match")]
    [InlineData("sp ace", "must match")]
    [InlineData("\u00e9t\u00e9", "must match")]
    public void Ids_containerd_would_refuse_are_invalid(string id, string why) =>
        Assert.Contains(why, Identifiers.Problem(id), StringComparison.Ordinal);

    [Fact]
    public void An_id_longer_than_containerds_76_characters_is_invalid()
    {
        Assert.Null(Identifiers.Problem(new string('a', 76)));
        Assert.Contains("76", Identifiers.Problem(new string('a', 77)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_container_id_that_runc_would_read_as_a_flag_is_refused_before_runc_runs()
    {
        var request = new CreateTaskRequest { Id = "-h", Bundle = Bundle, Options = TypeUrls.Pack(new Containerd.Runc.V1.Options { BinaryName = "/bin/true" }) };

        var ex = await Assert.ThrowsAsync<ShimException>(() => Service.CreateAsync(request, Ct));

        Assert.Equal(ErrorKind.InvalidArgument, ex.Kind);
        Assert.Contains("\"-h\"", ex.Message, StringComparison.Ordinal);
        Assert.Empty(Runc.Calls);
        Assert.Equal(0, Service.ContainerCount);
    }

    [Fact]
    public async Task An_exec_id_that_leads_out_of_the_bundle_is_refused_and_nothing_is_written()
    {
        await Service.CreateAsync(new CreateTaskRequest { Id = "c1", Bundle = Bundle, Options = TypeUrls.Pack(new Containerd.Runc.V1.Options { BinaryName = "/bin/true" }) }, Ct);
        await Service.StartAsync(new StartRequest { Id = "c1" }, Ct);
        var exec = new ExecProcessRequest
        {
            Id = "c1",
            ExecId = "../x",
            Spec = new Google.Protobuf.WellKnownTypes.Any { TypeUrl = "types.containerd.io/opencontainers/runtime-spec/1/Process", Value = ByteString.CopyFromUtf8("""{"args":["true"],"cwd":"/"}""") },
        };

        var ex = await Assert.ThrowsAsync<ShimException>(() => Service.ExecAsync(exec, Ct));

        Assert.Equal(ErrorKind.InvalidArgument, ex.Kind);
        Assert.Contains("exec id \"../x\"", ex.Message, StringComparison.Ordinal);
        var start = await Assert.ThrowsAsync<ShimException>(() => Service.StartAsync(new StartRequest { Id = "c1", ExecId = "../x" }, Ct));
        Assert.Equal(ErrorKind.InvalidArgument, start.Kind);
        Assert.DoesNotContain("exec", Runc.Calls);
        Assert.False(File.Exists(Path.Combine(Path.GetDirectoryName(Bundle)!, "x.pid")));
    }
}
