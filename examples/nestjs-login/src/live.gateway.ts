import { type OnGatewayConnection, WebSocketGateway } from '@nestjs/websockets';
import type { WebSocket } from 'ws';

// A live feed on the app's own HTTP server: a banned client cannot open it, and an open one is
// closed when its client is banned (JailkeeperModule guards the server's upgrades).
@WebSocketGateway({ path: '/live' })
export class LiveGateway implements OnGatewayConnection {
  handleConnection(socket: WebSocket) {
    socket.send('tick');
  }
}
