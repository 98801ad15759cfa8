using Containerd.Task.V2;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Shim.Ttrpc;

namespace Shim.E2E.Tests;

/// <summary>Requests containerd would never send, straight to the shim's socket: right codes, shim keeps serving.</summary>
public sealed class BadInputTests : E2ETest
{
    [Fact]
    public async Task Unknown_ids_wrong_states_and_garbage_get_the_right_status_and_the_shim_keeps_serving()
    {
        OursOnly("the Go shim answers Unknown for state errors");
        (await CtrAsync(RunArgs("bad1", detach: true, "sleep", "300"))).EnsureSuccess();
        await using var shim = await ShimClient.ConnectAsync(Ctrd, Ns, "bad1", Ct);
        const string v2 = ShimClient.TaskV2;

        var unknown = await shim.StatusOfAsync(v2, "State", new StateRequest { Id = "nope" }, StateResponse.Parser, Ct);
        Assert.Equal(StatusCode.NotFound, unknown.Code);
        Assert.Contains("nope", unknown.Message, StringComparison.Ordinal);

        var unknownExec = await shim.StatusOfAsync(v2, "Kill", new KillRequest { Id = "bad1", ExecId = "ghost", Signal = 9 }, Empty.Parser, Ct);
        Assert.Equal(StatusCode.NotFound, unknownExec.Code);

        var startAgain = await shim.StatusOfAsync(v2, "Start", new StartRequest { Id = "bad1" }, StartResponse.Parser, Ct);
        Assert.Equal(StatusCode.FailedPrecondition, startAgain.Code);
        Assert.Contains("running", startAgain.Message, StringComparison.Ordinal);

        var deleteRunning = await shim.StatusOfAsync(v2, "Delete", new DeleteRequest { Id = "bad1" }, DeleteResponse.Parser, Ct);
        Assert.Equal(StatusCode.FailedPrecondition, deleteRunning.Code);

        var emptyId = await shim.StatusOfAsync(v2, "Start", new StartRequest(), StartResponse.Parser, Ct);
        Assert.Equal(StatusCode.InvalidArgument, emptyId.Code);

        var duplicate = await shim.StatusOfAsync(v2, "Create", new CreateTaskRequest { Id = "bad1", Bundle = Ctrd.BundleDir(Ns, "bad1") }, CreateTaskResponse.Parser, Ct);
        Assert.Equal(StatusCode.AlreadyExists, duplicate.Code);

        var wrongOptions = await shim.StatusOfAsync(v2, "Create",
            new CreateTaskRequest { Id = "bad2", Bundle = Ctrd.BundleDir(Ns, "bad1"), Options = new Any { TypeUrl = "example.com/NotOptions", Value = ByteString.CopyFromUtf8("x") } },
            CreateTaskResponse.Parser, Ct);
        Assert.Equal(StatusCode.InvalidArgument, wrongOptions.Code);

        // bytes that are no StateRequest: field 1 announced with a length running past the end
        var garbage = await shim.StatusOfAsync(v2, "State", new BytesValue { Value = ByteString.CopyFrom(0x0a, 0xff, 0xff, 0x01) }, StateResponse.Parser, Ct);
        Assert.Equal(StatusCode.InvalidArgument, garbage.Code);

        var unknownMethod = await shim.StatusOfAsync(v2, "Teleport", new Empty(), Empty.Parser, Ct);
        Assert.Equal(StatusCode.Unimplemented, unknownMethod.Code);
        var unknownService = await shim.StatusOfAsync("containerd.task.v9.Task", "State", new StateRequest { Id = "bad1" }, StateResponse.Parser, Ct);
        Assert.Equal(StatusCode.Unimplemented, unknownService.Code);

        // still serving, on the same connection and through containerd
        var state = await shim.CallAsync("State", new StateRequest { Id = "bad1" }, StateResponse.Parser, Ct);
        Assert.Equal(Containerd.Types.Task.Status.Running, state.Status);
        Assert.Contains("RUNNING", (await CtrAsync("task", "ls")).EnsureSuccess().Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Ids_that_would_reach_runc_as_flags_or_leave_the_bundle_are_invalid_arguments()
    {
        OursOnly("the Go shim trusts containerd to have checked the ids");
        (await CtrAsync(RunArgs("ids1", detach: true, "sleep", "300"))).EnsureSuccess();
        await using var shim = await ShimClient.ConnectAsync(Ctrd, Ns, "ids1", Ct);
        const string v2 = ShimClient.TaskV2;
        string bundle = Ctrd.BundleDir(Ns, "ids1");

        var flag = await shim.StatusOfAsync(v2, "Create", new CreateTaskRequest { Id = "-h", Bundle = bundle }, CreateTaskResponse.Parser, Ct);
        Assert.Equal(StatusCode.InvalidArgument, flag.Code);
        Assert.Contains("\"-h\"", flag.Message, StringComparison.Ordinal);

        var spec = new Any { TypeUrl = "types.containerd.io/opencontainers/runtime-spec/1/Process", Value = ByteString.CopyFromUtf8("""{"args":["true"],"cwd":"/","user":{"uid":0,"gid":0}}""") };
        var escape = await shim.StatusOfAsync(v2, "Exec", new ExecProcessRequest { Id = "ids1", ExecId = "../x", Spec = spec }, Empty.Parser, Ct);
        Assert.Equal(StatusCode.InvalidArgument, escape.Code);
        Assert.Contains("../x", escape.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(Path.GetDirectoryName(bundle)!, "x.pid")));

        var killFlag = await shim.StatusOfAsync(v2, "Kill", new KillRequest { Id = "--all", Signal = 9 }, Empty.Parser, Ct);
        Assert.Equal(StatusCode.InvalidArgument, killFlag.Code);

        // the container is untouched and the shim still serves
        var state = await shim.CallAsync("State", new StateRequest { Id = "ids1" }, StateResponse.Parser, Ct);
        Assert.Equal(Containerd.Types.Task.Status.Running, state.Status);
    }

    [Fact]
    public async Task Task_api_v3_answers_on_the_same_socket()
    {
        OursOnly("the 1.6 Go shim serves task v2 only");
        (await CtrAsync(RunArgs("v3a", detach: true, "sleep", "300"))).EnsureSuccess();
        await using var shim = await ShimClient.ConnectAsync(Ctrd, Ns, "v3a", Ct);
        var state = await shim.Client.CallAsync("containerd.task.v3.Task", "State", new StateRequest { Id = "v3a" }, StateResponse.Parser, TimeSpan.FromSeconds(10), null, Ct);
        Assert.Equal(Containerd.Types.Task.Status.Running, state.Status);
    }
}
