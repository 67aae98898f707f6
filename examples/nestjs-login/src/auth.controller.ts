import { JailkeeperExempt } from '@jailkeeper/nestjs';
import { Body, Controller, Get, HttpCode, Post, UnauthorizedException } from '@nestjs/common';

const USERS = new Map([['alice', 'correct horse battery staple']]);

@Controller('auth')
export class AuthController {
  // A wrong password is an exception Nest answers with 401: counted in the login jail.
  @Post('login')
  @HttpCode(200)
  login(@Body() body: { user?: string; password?: string }) {
    if (body?.user === undefined || USERS.get(body.user) !== body.password) {
      throw new UnauthorizedException('wrong user or password');
    }
    return { welcome: body.user };
  }

  // Asked by every page before it opens /live; 401 for visitors who are not logged in, by design.
  // Those 401s are normal: never counted.
  @Get('session')
  @JailkeeperExempt()
  session() {
    throw new UnauthorizedException('not logged in');
  }
}
