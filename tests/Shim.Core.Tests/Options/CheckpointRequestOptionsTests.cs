using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Shim.Core.Errors;
using Shim.Core.Options;
using Shim.Protos;
using Shim.Os.Terminals;

namespace Shim.Core.Tests.Options;

public class CheckpointRequestOptionsTests
{
    [Fact]
    public void No_options_mean_a_checkpoint_that_leaves_the_container_running()
    {
        var o = CheckpointRequestOptions.Decode(null);
        Assert.Equal((false, "", 0), (o.Exit, o.WorkPath, o.EmptyNamespaces.Count));
    }

    [Fact]
    public void Runc_v1_checkpoint_options_are_read_field_by_field()
    {
        var any = TypeUrls.Pack(new Containerd.Runc.V1.CheckpointOptions
        {
            Exit = true, OpenTcp = true, ExternalUnixSockets = true, Terminal = true, FileLocks = true,
            EmptyNamespaces = { "network" }, ImagePath = "/img", WorkPath = "/work", ParentPath = "/parent",
        });
        var o = CheckpointRequestOptions.Decode(any);
        Assert.Equal((true, true, true, true, true), (o.Exit, o.OpenTcp, o.ExternalUnixSockets, o.Terminal, o.FileLocks));
        Assert.Equal(["network"], o.EmptyNamespaces);
        Assert.Equal(("/img", "/work", "/parent"), (o.ImagePath, o.WorkPath, o.ParentPath));
    }

    [Fact]
    public void Legacy_linux_runc_checkpoint_options_keep_their_own_numbers_for_work_and_image_path()
    {
        var legacy = new Containerd.Linux.Runc.CheckpointOptions { Exit = true, WorkPath = "/work", ImagePath = "/img", FileLocks = true };
        // field 8 is work_path here but image_path in containerd.runc.v1: decoding by type name keeps them apart
        var o = CheckpointRequestOptions.Decode(TypeUrls.Pack(legacy));
        Assert.Equal((true, "/work", "/img", true), (o.Exit, o.WorkPath, o.ImagePath, o.FileLocks));
    }

    [Fact]
    public void Other_types_and_garbage_are_invalid_arguments()
    {
        var other = TypeUrls.Pack(new Containerd.Runc.V1.Options { BinaryName = "x" });
        Assert.Equal(ErrorKind.InvalidArgument, Assert.Throws<ShimException>(() => CheckpointRequestOptions.Decode(other)).Kind);
        var garbage = new Any { TypeUrl = "containerd.runc.v1.CheckpointOptions", Value = ByteString.CopyFrom(0xff, 0xff, 0xff) };
        Assert.Equal(ErrorKind.InvalidArgument, Assert.Throws<ShimException>(() => CheckpointRequestOptions.Decode(garbage)).Kind);
    }
}
