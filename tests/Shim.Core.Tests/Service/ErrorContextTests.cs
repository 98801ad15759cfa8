using Containerd.Task.V2;
using Google.Protobuf;
using Shim.Core.Errors;
using Shim.Core.Service;
using Shim.Protos;
using Shim.Ttrpc;

namespace Shim.Core.Tests.Service;

/// <summary>
/// A handler's failure that does not say what was attempted (an errno, an I/O error of the runtime
/// library) reaches containerd as the request's operation, its object and the reason.
/// </summary>
public sealed class ErrorContextTests : TaskServiceTestBase
{
    private static readonly TtrpcCallContext Context = new(TaskService.TaskV3, "Create");

    public static TheoryData<IMessage, string> Requests() => new()
    {
        { new CreateTaskRequest { Id = "c1" }, "create c1" },
        { new StartRequest { Id = "c1" }, "start c1" },
        { new StartRequest { Id = "c1", ExecId = "e1" }, "start exec e1 of c1" },
        { new DeleteRequest { Id = "c1", ExecId = "e1" }, "delete exec e1 of c1" },
        { new KillRequest { Id = "c1" }, "kill c1" },
        { new WaitRequest { Id = "c1", ExecId = "e1" }, "wait exec e1 of c1" },
        { new CloseIORequest { Id = "c1", ExecId = "e1" }, "close-io exec e1 of c1" },
        { new ResizePtyRequest { Id = "c1" }, "resize-pty c1" },
        { new ExecProcessRequest { Id = "c1", ExecId = "e1" }, "exec e1 in c1" },
        { new PidsRequest { Id = "c1" }, "pids c1" },
        { new PauseRequest { Id = "c1" }, "pause c1" },
        { new ResumeRequest { Id = "c1" }, "resume c1" },
        { new CheckpointTaskRequest { Id = "c1" }, "checkpoint c1" },
        { new UpdateTaskRequest { Id = "c1" }, "update c1" },
        { new StatsRequest { Id = "c1" }, "stats c1" },
        { new StateRequest { Id = "c1" }, "state c1" },
        { new ConnectRequest { Id = "c1" }, "connect c1" },
        { new ShutdownRequest(), "shutdown" },
    };

    [Theory]
    [MemberData(nameof(Requests))]
    public void Each_request_names_its_operation_and_object(IMessage request, string operation)
    {
        Assert.Equal(operation, TaskService.Operation(request));
    }

    [Fact]
    public async Task A_runtime_that_exits_0_without_writing_the_pid_file_fails_create_naming_the_container_and_the_file()
    {
        Runc.CreateWithoutPidFile = true;
        var create = TaskService.InContext<CreateTaskRequest, CreateTaskResponse>(Service.CreateAsync);
        var request = new CreateTaskRequest { Id = "c1", Bundle = Bundle, Options = TypeUrls.Pack(new Containerd.Runc.V1.Options { BinaryName = "/bin/true" }) };

        var ex = await Assert.ThrowsAsync<ShimException>(() => create(request, Context).AsTask());

        Assert.IsType<FileNotFoundException>(ex.InnerException);
        var (code, message) = StatusMapping.ToStatus(ex);
        Assert.Equal(StatusCode.Unknown, code);
        Assert.Equal($"create c1: Could not find file '{Path.Combine(Bundle, "init.pid")}'.", message);
        Assert.Equal(0, Service.ContainerCount);   // and the id is free again
    }

    [Fact]
    public async Task Failures_that_say_what_failed_pass_unchanged_whether_thrown_at_once_or_later()
    {
        var shim = new ShimException(ErrorKind.NotFound, "container c9: not created");
        var now = TaskService.InContext<StateRequest, StateResponse>((_, _) => throw shim);
        Assert.Same(shim, await Assert.ThrowsAsync<ShimException>(() => now(new StateRequest { Id = "c9" }, Context).AsTask()));

        var later = TaskService.InContext<KillRequest, Google.Protobuf.WellKnownTypes.Empty>(async (_, ct) =>
        {
            await Task.Yield();
            throw new IOException("console socket: short send (3 of 8 bytes)");
        });
        var ex = await Assert.ThrowsAsync<ShimException>(() => later(new KillRequest { Id = "c1", ExecId = "e2" }, Context).AsTask());
        Assert.Equal("kill exec e2 of c1: console socket: short send (3 of 8 bytes)", ex.Message);

        var sync = TaskService.InContext<PidsRequest, PidsResponse>((_, _) => throw new Shim.Os.ErrnoException(24, "pipe2"));
        ex = await Assert.ThrowsAsync<ShimException>(() => sync(new PidsRequest { Id = "c1" }, Context).AsTask());
        Assert.Equal("pids c1: pipe2: Too many open files (EMFILE)", ex.Message);
    }
}
