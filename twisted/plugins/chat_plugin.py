"""
The C{chat} plugin for twistd.  twistd imports every plugin to build its
--help, so the server's modules are imported only when C{chat} is used.
"""

from __future__ import annotations

from twisted.application.service import IService, IServiceMaker
from twisted.plugin import IPlugin
from twisted.python import usage
from zope.interface import implementer


@implementer(IServiceMaker, IPlugin)
class ChatServiceMaker:
    """Makes the twisted-chat service from C{twistd chat} options."""

    tapname = "chat"
    description = "Multi-room chat for telnet, the bundled client and browsers."

    @property
    def options(self) -> type[usage.Options]:
        from twisted_chat.tap import Options

        return Options

    def makeService(self, options: usage.Options) -> IService:
        from twisted_chat.tap import makeService, settle_heap_when_running

        service = makeService(options)
        settle_heap_when_running()
        return service


serviceMaker = ChatServiceMaker()
