using System.Security.Cryptography;
using System.Text;
using Shim.Core.Cli;

namespace Shim.Core.Tests.Cli;

public class ShimAddressTests
{
    [Fact]
    public void Address_is_the_sha256_of_address_namespace_and_group_under_the_socket_dir()
    {
        string expected = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes("/run/c/containerd.sock/rhns/rh1")));
        Assert.Equal("unix:///run/containerd/s/" + expected, ShimAddress.For("/run/c/containerd.sock", "rhns", "rh1"));
    }

    [Fact]
    public void Duplicate_slashes_collapse_like_go_filepath_join()
    {
        Assert.Equal(ShimAddress.For("/run/c.sock", "ns", "g"), ShimAddress.For("/run//c.sock/", "ns", "g"));
    }

    [Fact]
    public void Group_annotation_wins_then_sandbox_id_then_the_task_id()
    {
        Assert.Equal("g1", ShimAddress.GroupOf("""{"annotations":{"io.kubernetes.cri.sandbox-id":"sb","io.containerd.runc.v2.group":"g1"}}"""u8, "c1"));
        Assert.Equal("sb", ShimAddress.GroupOf("""{"annotations":{"io.kubernetes.cri.sandbox-id":"sb"}}"""u8, "c1"));
        Assert.Equal("c1", ShimAddress.GroupOf("""{"ociVersion":"1.0.2"}"""u8, "c1"));
    }

    [Fact]
    public void Path_of_strips_the_unix_scheme()
    {
        Assert.Equal("/run/containerd/s/ab", ShimAddress.PathOf("unix:///run/containerd/s/ab"));
    }
}
