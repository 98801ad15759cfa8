using Shim.Os.Mounting;
namespace Shim.Os.Tests;

public sealed class MountInfoTests
{
    private const string Sample =
        "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n" +
        "36 22 0:32 / /run/with\\040space rw,nosuid - tmpfs tmpfs rw\n" +
        "37 36 0:33 / /run/with\\040space/inner rw - tmpfs tmpfs rw\n";

    [Fact]
    public void Mount_points_are_read_from_the_fifth_field_with_octal_escapes_decoded()
    {
        Assert.Equal(["/", "/run/with space", "/run/with space/inner"], MountInfo.ParseMountPoints(Sample));
    }

    [Theory]
    [InlineData("/a/b", "/a/b", true)]
    [InlineData("/a/b/c", "/a/b", true)]
    [InlineData("/a/bc", "/a/b", false)]
    [InlineData("/a", "/a/b", false)]
    [InlineData("/anything", "/", true)]
    public void Paths_at_or_under_a_root_are_matched_on_component_boundaries(string path, string root, bool expected)
    {
        Assert.Equal(expected, MountInfo.IsAtOrUnder(path, root));
    }
}
